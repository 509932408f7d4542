// Package fault is the small vocabulary of error kinds that the domain and
// the stores speak: not found, invalid, conflict, failed precondition,
// permission denied, unauthenticated. Code wraps one of the Err* sentinels
// with %w; the transport edge maps each sentinel to a Connect/gRPC code in
// one table, and anything else becomes Internal.
package fault

import (
	"errors"
	"fmt"
)

// The error kinds. Test with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalid            = errors.New("invalid")
	ErrConflict           = errors.New("conflict")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
)

// kindError carries a kind and a message; Unwrap returns the kind and,
// when there is one, the cause.
type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// New returns an error of the given kind with a formatted message. A %w
// verb in the format keeps its operand as a cause.
func New(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &kindError{kind: kind, msg: err.Error(), cause: errors.Unwrap(err)}
}

// Kind returns the Err* sentinel that err wraps, or nil.
func Kind(err error) error {
	for _, k := range []error{ErrNotFound, ErrInvalid, ErrConflict, ErrFailedPrecondition, ErrPermissionDenied, ErrUnauthenticated} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
