"""runner.agent"""
