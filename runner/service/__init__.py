"""runner.service"""
