DROP TABLE ai_ledger;
DROP FUNCTION ai_ledger_append_only();
