// Package sms sends the county node's notifications (推送) to enterprises:
// the text of the refund notice, the Gateway interface with a file gateway
// for development and an HTTP adapter for a real SMS provider, and the
// Sender worker that drains the node's SMS outbox.
//
// Delivery is at least once towards the provider and exactly once towards
// the enterprise as far as the provider deduplicates: every attempt for one
// outbox row carries the same message id (the row's id), so a message sent
// again after a crash between sending it and recording it sent is dropped
// by the provider, and a row recorded sent is never sent again.
package sms

import (
	"context"
	"errors"
	"fmt"
)

// Message is one SMS to send.
type Message struct {
	// ID is the outbox row's id, the same on every attempt: the provider
	// deduplicates by it.
	ID     string
	Mobile string
	Text   string
}

// Gateway sends SMS. Send returns the provider's id for the accepted
// message. An error that wraps ErrPermanent means the provider refused the
// message for good (a malformed number, a rejected text): it is not tried
// again. Any other error is transient and the message is retried.
type Gateway interface {
	Send(ctx context.Context, m Message) (gatewayMessageID string, err error)
}

// ErrPermanent marks a gateway error that retrying cannot cure.
var ErrPermanent = errors.New("sms: permanent failure")

// Permanent returns err marked as permanent (errors.Is(err, ErrPermanent)).
func Permanent(err error) error {
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}
