"""runner.records"""
