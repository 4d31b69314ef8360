"""Who may do what, where (SPEC "Accounts and access"): the caller (principal), accounts and tokens
(accounts), every role × scope rule (scope) and the append-only audit log (audit). Sits on store/."""
