"""Adapters to the outside world: object storage, Amazon Personalize, marketing platforms."""
