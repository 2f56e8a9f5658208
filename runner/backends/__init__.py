"""runner.backends"""
