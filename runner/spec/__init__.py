"""runner.spec"""
