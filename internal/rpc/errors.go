// Package rpc is what the city server and the county node share at the
// transport edge: turning domain errors into Connect/gRPC errors in one
// place, and serving Connect handlers (Connect, gRPC and gRPC-Web on one
// port; h2c or TLS) with health, reflection and graceful shutdown.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"wengang/internal/fault"
	"wengang/internal/source"
	wengangv1 "wengang/proto/wengang/v1"
)

// MaxRowViolations bounds the rows named in one error's details, so that a
// file with a million bad rows does not make a trailer no client accepts;
// the message says how many there were in all.
const MaxRowViolations = 10_000

var codes = []struct {
	kind error
	code connect.Code
}{
	{fault.ErrNotFound, connect.CodeNotFound},
	{fault.ErrInvalid, connect.CodeInvalidArgument},
	{fault.ErrConflict, connect.CodeAlreadyExists},
	{fault.ErrFailedPrecondition, connect.CodeFailedPrecondition},
	{fault.ErrPermissionDenied, connect.CodePermissionDenied},
	{fault.ErrUnauthenticated, connect.CodeUnauthenticated},
}

// Error turns err into the *connect.Error a client sees. A connect error
// passes through; a fault kind maps to its code with its message; bad rows
// of a source file become InvalidArgument with RowViolations details;
// context errors keep their meaning; anything else is Internal with a
// generic message, and its cause is logged, never sent.
func Error(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var rows source.Errors
	if errors.As(err, &rows) {
		return RowError(rows)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return connect.NewError(c.code, errors.New(err.Error()))
		}
	}
	log.LogAttrs(ctx, slog.LevelError, "internal error", slog.String("procedure", procedure), slog.Any("err", err))
	return connect.NewError(connect.CodeInternal, errors.New("internal error (内部错误); the cause is in the server's log"))
}

// RowError is InvalidArgument naming every bad row (up to
// MaxRowViolations in the details; the message counts them all).
func RowError(rows source.Errors) *connect.Error {
	msg := fmt.Sprintf("%d bad row(s); nothing was changed (输入有误，未做任何更改)", len(rows))
	if len(rows) > 0 {
		msg += ": " + rows[0].Error()
		if len(rows) > 1 {
			msg += fmt.Sprintf(" (and %d more in the details)", len(rows)-1)
		}
	}
	ce := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	detail := &wengangv1.RowViolations{}
	for i, r := range rows {
		if i == MaxRowViolations {
			break
		}
		detail.Violations = append(detail.Violations, &wengangv1.RowViolation{File: r.File, Line: int64(r.Line), Column: r.Column, Reason: r.Reason})
	}
	if d, err := connect.NewErrorDetail(detail); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

// FieldError is InvalidArgument naming every bad field of a request.
// Build one with Fields.
type Fields struct {
	v []*wengangv1.FieldViolation
}

// Add records that field is wrong.
func (f *Fields) Add(field, format string, args ...any) {
	f.v = append(f.v, &wengangv1.FieldViolation{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Err returns nil when no field was added, else InvalidArgument with a
// FieldViolations detail.
func (f *Fields) Err() error {
	if len(f.v) == 0 {
		return nil
	}
	msg := f.v[0].Field + ": " + f.v[0].Reason
	if len(f.v) > 1 {
		msg += fmt.Sprintf(" (and %d more in the details)", len(f.v)-1)
	}
	ce := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	if d, err := connect.NewErrorDetail(&wengangv1.FieldViolations{Violations: f.v}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

// RowViolations returns the RowViolations detail of err, if it has one.
func RowViolations(err error) []*wengangv1.RowViolation {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if rv, ok := v.(*wengangv1.RowViolations); ok {
			return rv.Violations
		}
	}
	return nil
}

// ErrorInterceptor converts every error a handler returns with Error, so
// that handlers return domain errors and the mapping lives here alone.
func ErrorInterceptor(log *slog.Logger) connect.Interceptor {
	return errorInterceptor{log: log}
}

type errorInterceptor struct{ log *slog.Logger }

func (e errorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, Error(ctx, e.log, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (e errorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e errorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return Error(ctx, e.log, conn.Spec().Procedure, next(ctx, conn))
	}
}
