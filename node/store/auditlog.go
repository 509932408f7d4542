package store

import (
	"context"

	"wengang/internal/audit"
)

// AuditEntries returns the entries of the node's audit log that f selects
// (internal/audit keeps the one implementation of the log for the node and
// the city).
func (s *Store) AuditEntries(ctx context.Context, f audit.Filter) ([]audit.Entry, error) {
	es, err := audit.List(ctx, s.pool, f)
	if err != nil {
		return nil, fail(err, "audit entries of %s", f.Domain)
	}
	return es, nil
}

// VerifyAudit checks the entries fromSeq..toSeq of domain's chain (see
// audit.Verify).
func (s *Store) VerifyAudit(ctx context.Context, domain string, fromSeq, toSeq int64) (audit.Verification, error) {
	return audit.Verify(ctx, s.pool, domain, fromSeq, toSeq)
}
