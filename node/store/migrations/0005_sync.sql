-- the mirror of the city's decisions (sync worker): tables are added here.
SELECT 1;
