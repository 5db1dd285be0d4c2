"""Bad-review tickets (差评工单): opening, workflow rules, extensions, alerts, views."""
