// Package service implements the city server's RPC services over the
// city's store. Handlers return domain errors (package fault, or an
// rpc.Fields error for bad request fields); rpc.ErrorInterceptor turns them
// into Connect codes, and access control happens before any handler runs,
// in one interceptor. Handlers still check what only they can: that a
// node acts for the counties its certificate names.
package service

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"wengang/internal/fault"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/server/store"
)

// Deps is what every service of the city needs.
type Deps struct {
	Store *store.Store
	Log   *slog.Logger
	Now   func() time.Time // the clock
	// Params returns the policy parameters with the given id, or an error
	// when the city does not know them.
	Params func(id string) (refund.Params, error)
	// Calendar is the working-day calendar (publicity end dates).
	Calendar *calendar.Calendar
	// Today is the business date: Asia/Shanghai's today, or the date fixed
	// by --business-date for drills and tests.
	Today func() civil.Date
}

// IntakeService implements wengangv1connect.IntakeServiceHandler.
type IntakeService struct{ *Deps }

// PublicityService implements wengangv1connect.PublicityServiceHandler.
type PublicityService struct{ *Deps }

// FinanceService implements wengangv1connect.FinanceServiceHandler.
type FinanceService struct{ *Deps }

// PortalService implements wengangv1connect.PortalServiceHandler.
type PortalService struct{ *Deps }

// ProgressService implements wengangv1connect.ProgressServiceHandler.
type ProgressService struct{ *Deps }

// SyncService implements wengangv1connect.SyncServiceHandler: the county
// nodes push batches, account corrections and screening reports, and pull
// the decisions feed.
type SyncService struct{ *Deps }

// node returns the calling county node: fault.ErrUnauthenticated when the
// request carries no principal, fault.ErrPermissionDenied when the caller is
// not a node.
func node(ctx context.Context) (access.Principal, error) {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "no authenticated caller (未认证)")
	}
	if p.Kind != access.KindNode {
		return access.Principal{}, fault.New(fault.ErrPermissionDenied, "only county nodes, with their client certificates, may call SyncService (仅县级节点可调用)")
	}
	return p, nil
}

// actsFor checks that node p's certificate names county.
func actsFor(p access.Principal, county string) error {
	if !slices.Contains(p.Counties, county) {
		return fault.New(fault.ErrPermissionDenied, "the certificate of %s does not name county %s (证书未授权该县)", p.Subject, county)
	}
	return nil
}
