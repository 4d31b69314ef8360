"""Cases, from report to reply: one input model per report and one reply model per case (schemas), intake
(one statement: assign, store, first events), reads within the reader's scope (read), bulk batches (bulk,
bulk_files), the Open311 view (open311) and the spatial assignment (assignment/). The workflow, deadlines,
supervision and KPIs belong here. Sits on grids/, access/ and reference/; independent of features/."""
