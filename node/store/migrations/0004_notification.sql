-- notifications and enterprise responses (NotificationService): tables are added here.
SELECT 1;
