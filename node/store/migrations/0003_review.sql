-- review (ReviewService): tables are added here.
SELECT 1;
