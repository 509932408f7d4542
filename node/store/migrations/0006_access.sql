-- API tokens (access): tables are added here.
SELECT 1;
