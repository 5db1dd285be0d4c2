"""Citizens' replies, through the stages of sms/replies/pipeline.py, named in their order."""
