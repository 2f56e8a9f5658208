"""runner.render"""
