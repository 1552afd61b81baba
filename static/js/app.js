// Behaviour htmx cannot express declaratively. No inline scripts: the CSP forbids them.
