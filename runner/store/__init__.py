"""runner.store"""
