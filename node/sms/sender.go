package sms

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"wengang/node/store"
)

// Outbox is the SMS outbox the Sender drains; *store.Store is one.
type Outbox interface {
	ClaimNotifications(ctx context.Context, now time.Time, limit int, lease time.Duration, maxAttempts int) ([]store.Notification, error)
	RecordNotificationSent(ctx context.Context, county string, id int64, gatewayMessageID string, at time.Time) error
	RecordNotificationFailure(ctx context.Context, county string, id int64, reason string, retryAt, at time.Time) error
}

// Sender drains the SMS outbox through a gateway: it claims due
// notifications, sends each, and records the outcome.
//
//   - A notification recorded sent is never claimed again, so never sent
//     twice by the node.
//   - A claim leases the row for SendTimeout plus a margin; a Sender that
//     dies after sending and before recording leaves the row queued, and it
//     is sent again when the lease expires, under the same message id, which
//     the provider deduplicates (see HTTPGateway).
//   - A transient failure is retried after an exponential backoff with
//     jitter (BaseDelay·2^(attempt−1), at most MaxDelay, jittered into its
//     upper half); after MaxAttempts attempts, or on a permanent failure,
//     the notification is failed and a clerk must reach the unit another
//     way.
//
// Several Senders, in one process or several, may drain one outbox: claims
// skip rows another holds.
type Sender struct {
	Outbox  Outbox
	Gateway Gateway
	Log     *slog.Logger     // nil: no log
	Now     func() time.Time // nil: time.Now

	BatchSize   int           // rows claimed at a time; default 50
	Concurrency int           // messages sent at once; default 4
	MaxAttempts int           // default 8
	BaseDelay   time.Duration // default 30s
	MaxDelay    time.Duration // default 1h
	SendTimeout time.Duration // per message; default 30s
	Poll        time.Duration // how often Run looks for due rows unwoken; default 30s
	// Jitter returns a delay in [d/2, d]; nil uses math/rand/v2. Tests fix it.
	Jitter func(d time.Duration) time.Duration

	once sync.Once
	wake chan struct{}
}

func (s *Sender) init() {
	s.once.Do(func() {
		s.wake = make(chan struct{}, 1)
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.BatchSize <= 0 {
			s.BatchSize = 50
		}
		if s.Concurrency <= 0 {
			s.Concurrency = 4
		}
		if s.MaxAttempts <= 0 {
			s.MaxAttempts = 8
		}
		if s.BaseDelay <= 0 {
			s.BaseDelay = 30 * time.Second
		}
		if s.MaxDelay <= 0 {
			s.MaxDelay = time.Hour
		}
		if s.SendTimeout <= 0 {
			s.SendTimeout = 30 * time.Second
		}
		if s.Poll <= 0 {
			s.Poll = 30 * time.Second
		}
		if s.Jitter == nil {
			s.Jitter = func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
		}
	})
}

// Kick wakes Run to drain the outbox now (NotificationService.Kick). It
// never blocks.
func (s *Sender) Kick() {
	s.init()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox whenever kicked and every Poll, until ctx is done;
// it then returns nil. Errors of the database are logged and retried at the
// next round.
func (s *Sender) Run(ctx context.Context) error {
	s.init()
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	for {
		if _, err := s.Drain(ctx); err != nil && ctx.Err() == nil {
			s.Log.LogAttrs(ctx, slog.LevelError, "sms sender: drain", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Drain sends every notification due now, claim after claim, until none is
// due, and returns the number of attempts made.
func (s *Sender) Drain(ctx context.Context) (int, error) {
	s.init()
	total := 0
	for {
		n, err := s.round(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// round claims one batch of due notifications and sends them.
func (s *Sender) round(ctx context.Context) (int, error) {
	lease := s.SendTimeout + s.SendTimeout/2
	ns, err := s.Outbox.ClaimNotifications(ctx, s.Now(), s.BatchSize, lease, s.MaxAttempts)
	if err != nil || len(ns) == 0 {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, s.Concurrency)
	)
	for _, n := range ns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.send(ctx, n); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(ns), first
}

// send makes one attempt at n (already counted by the claim) and records
// the outcome.
func (s *Sender) send(ctx context.Context, n store.Notification) error {
	sctx, cancel := context.WithTimeout(ctx, s.SendTimeout)
	id, err := s.Gateway.Send(sctx, Message{ID: n.MessageID(), Mobile: n.Mobile, Text: n.Text})
	cancel()
	now := s.Now()
	if err == nil {
		s.Log.LogAttrs(ctx, slog.LevelInfo, "sms sent", slog.String("id", n.MessageID()), slog.String("gateway_id", id), slog.Int("attempt", n.Attempts))
		return s.Outbox.RecordNotificationSent(context.WithoutCancel(ctx), n.County, n.ID, id, now)
	}
	if ctx.Err() != nil {
		// Shutting down: the lease brings the row back; do not count it as
		// the gateway's failure.
		return nil
	}
	var retryAt time.Time // zero: give up
	if !errors.Is(err, ErrPermanent) && n.Attempts < s.MaxAttempts {
		retryAt = now.Add(s.Jitter(s.backoff(n.Attempts)))
	}
	s.Log.LogAttrs(ctx, slog.LevelWarn, "sms not sent", slog.String("id", n.MessageID()), slog.Int("attempt", n.Attempts),
		slog.Bool("retry", !retryAt.IsZero()), slog.Any("err", err))
	return s.Outbox.RecordNotificationFailure(ctx, n.County, n.ID, err.Error(), retryAt, now)
}

// backoff is the delay after the given attempt (from 1).
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.BaseDelay
	for i := 1; i < attempt && d < s.MaxDelay; i++ {
		d *= 2
	}
	return min(d, s.MaxDelay)
}
