"""runner.images"""
