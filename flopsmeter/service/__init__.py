"""The classifier service: gathers a terminal training job's facts, classifies it, writes its audit record."""
