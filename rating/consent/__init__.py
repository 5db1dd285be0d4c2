"""Contact consent: opt-outs that every channel (SMS, IVR survey calls) obeys."""
