// Package service implements the county node's RPC services over the
// node's store: import, screening, review, notification, batches and the
// mirror of the city's decisions. Handlers return domain errors (package
// fault, source.Errors); rpc.ErrorInterceptor turns them into Connect codes,
// and access control happens before any handler runs, in one interceptor.
package service

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"wengang/internal/auditrpc"
	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/refund"
)

// Deps is what every service of the node needs.
type Deps struct {
	Store    *store.Store
	Log      *slog.Logger
	Now      func() time.Time // the clock; business dates come from it
	Counties []string         // the counties (tenants) this node serves
	Calendar *calendar.Calendar
	// Params returns the policy parameters with the given id ("" for the
	// default, liaocheng-2022).
	Params func(id string) (refund.Params, error)
}

// DefaultParams looks up embedded policy parameters by id.
func DefaultParams(id string) (refund.Params, error) {
	if id == "" {
		id = refund.DefaultParamsID
	}
	p, err := refund.LoadParams(id)
	if err != nil {
		return refund.Params{}, fault.New(fault.ErrInvalid, "unknown policy parameters %q", id)
	}
	return p, nil
}

// serves reports whether county is one of this node's tenants; a request
// for another county is NotFound (access control has already checked the
// caller may act there).
func (d *Deps) serves(county string) error {
	if county == "" {
		return fault.New(fault.ErrInvalid, "county: required")
	}
	if !slices.Contains(d.Counties, county) {
		return fault.New(fault.ErrNotFound, "county %s is not served by this node", county)
	}
	return nil
}

// caller returns the authenticated principal; the access interceptor
// guarantees one on every request.
func caller(ctx context.Context) access.Principal {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		return access.Principal{Kind: access.KindSystem, Subject: "anonymous"}
	}
	return p
}

// ImportService implements wengangv1connect.ImportServiceHandler.
type ImportService struct{ *Deps }

// ScreeningService implements wengangv1connect.ScreeningServiceHandler.
type ScreeningService struct{ *Deps }

// ReviewService implements wengangv1connect.ReviewServiceHandler.
type ReviewService struct{ *Deps }

// NotificationService implements wengangv1connect.NotificationServiceHandler.
type NotificationService struct {
	*Deps
	// Phones gives each county's agency phone, quoted in the SMS text as
	// the number to call with an objection.
	Phones map[string]string
	// Kick, when set, wakes the SMS sender after messages are queued.
	Kick func()
}

// BatchService implements wengangv1connect.BatchServiceHandler.
type BatchService struct {
	*Deps
	// Kick, when set, wakes the sync worker after a batch is sealed.
	Kick func()
}

// NewAuditService returns the node's AuditService: the audit logs of the
// counties it serves.
func NewAuditService(d *Deps) *auditrpc.Service {
	return &auditrpc.Service{Keeps: d.serves, List: d.Store.AuditEntries, Verify: d.Store.VerifyAudit}
}
