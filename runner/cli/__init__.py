"""runner.cli"""
