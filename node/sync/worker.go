// Package sync is the county node's sync worker (上报与反馈): it drains the
// node's outboxes to the city — sealed batches (SyncService.PushBatch) and
// corrected accounts (SyncService.PushAccountCorrection) — and pulls the
// city's decisions feed back into the node's status mirror
// (SyncService.PullDecisions).
//
// All of its state is in the node's database: what is still to push, how
// often it was tried and when to try again, and how far each county's feed
// has been applied. A worker may therefore stop at any moment (a crash, a
// restart of the node) and the next one goes on where it stopped; the city
// may be down for as long as it likes. Every step is idempotent: the city
// stores a batch once by id and content hash and answers a replay with its
// first answer, takes a correction once by its id, and the node applies
// each decision once by its sequence.
package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	stdsync "sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"wengang/node/store"
	wengangv1 "wengang/proto/wengang/v1"
)

// CityClient is what the worker needs of the city's SyncService. Dial
// returns one over grpc-go.
type CityClient interface {
	PushBatch(ctx context.Context, req *wengangv1.PushBatchRequest) (*wengangv1.PushBatchResponse, error)
	PullDecisions(ctx context.Context, req *wengangv1.PullDecisionsRequest) (*wengangv1.PullDecisionsResponse, error)
	PushAccountCorrection(ctx context.Context, req *wengangv1.PushAccountCorrectionRequest) (*wengangv1.PushAccountCorrectionResponse, error)
	ReportScreening(ctx context.Context, req *wengangv1.ReportScreeningRequest) (*wengangv1.ReportScreeningResponse, error)
}

// Backoff paces the retries of a failed push: the n-th retry waits a random
// time between 0 and min(Max, Min·2^(n−1)) ("full jitter"), so that nodes
// that failed together do not come back together.
type Backoff struct {
	Min time.Duration // default 1s
	Max time.Duration // default 5m
}

// Delay returns the wait before retry number attempt (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 5 * time.Minute
	}
	hi = max(hi, lo)
	ceiling := lo
	for i := 1; i < attempt && ceiling < hi; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, hi)
	return rand.N(ceiling + 1)
}

// Defaults and bounds of the worker.
const (
	defaultInterval = 10 * time.Second
	callTimeout     = time.Minute     // one RPC to the city
	lease           = 2 * callTimeout // a claimed item is not claimed again before
	claimLimit      = 16              // outbox items claimed at once
	pullLimit       = 1000            // decisions asked for at once
	minWait         = 10 * time.Millisecond
)

// Worker pushes a node's outboxes to the city and mirrors the city's
// decisions. Set its fields, then call Run (or Sync for one round).
type Worker struct {
	Store    *store.Store
	City     CityClient
	Log      *slog.Logger     // default: discard
	Now      func() time.Time // default time.Now
	Counties []string         // the counties (tenants) whose outboxes and feeds it serves
	Interval time.Duration    // between rounds when nothing is due sooner; default 10s
	Backoff  Backoff

	once stdsync.Once
	kick chan struct{}
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.kick = make(chan struct{}, 1)
		if w.Log == nil {
			w.Log = slog.New(slog.DiscardHandler)
		}
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Interval <= 0 {
			w.Interval = defaultInterval
		}
	})
}

// Kick wakes a running worker for a round now (after a batch was sealed or
// an account corrected). It never blocks.
func (w *Worker) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run does rounds until ctx is done, then returns nil. Between rounds it
// sleeps until the next outbox item is due or Interval has passed,
// whichever is sooner, or until Kick.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	w.Log.LogAttrs(ctx, slog.LevelInfo, "sync worker started", slog.Any("counties", w.Counties))
	for {
		if err := w.Sync(ctx); err != nil && ctx.Err() == nil {
			w.Log.LogAttrs(ctx, slog.LevelWarn, "sync round", slog.Any("err", err))
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := w.Interval
		if next, ok, err := w.Store.NextPushAt(ctx, w.Counties); err == nil && ok {
			wait = min(wait, max(next.Sub(w.Now()), minWait))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// Sync does one round: it pushes every batch, correction and screening
// report that is due (claiming no more after a push that must be retried:
// the city is likely down), then pulls each county's decisions until the
// city has no more and applies them. It returns what went wrong, if
// anything; a push that failed is already recorded for its retry.
func (w *Worker) Sync(ctx context.Context) error {
	w.init()
	var errs []error
	if err := w.pushBatches(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := w.pushCorrections(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := w.pushReports(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, county := range w.Counties {
		if ctx.Err() != nil {
			break
		}
		if err := w.pull(ctx, county); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// errRetry says that a push failed and is recorded for its retry.
var errRetry = errors.New("push to be retried")

// drain claims due items a page at a time and pushes each, until none is
// due or a push had to be put off for a retry (the outbox then waits for
// its next due time rather than spinning).
func drain[T any](ctx context.Context, claim func() ([]T, error), push func(context.Context, T) error) error {
	for ctx.Err() == nil {
		due, err := claim()
		if err != nil {
			return err
		}
		retry := false
		for _, item := range due {
			if err := push(ctx, item); errors.Is(err, errRetry) {
				retry = true
			} else if err != nil {
				return err
			}
		}
		if retry || len(due) < claimLimit {
			return nil
		}
	}
	return nil
}

func (w *Worker) pushBatches(ctx context.Context) error {
	return drain(ctx, func() ([]store.OutboxBatch, error) {
		return w.Store.ClaimDueBatches(ctx, w.Counties, w.Now(), lease, claimLimit)
	}, w.pushBatch)
}

// pushBatch pushes one batch and records the outcome: delivered, refused
// for good, or to be retried (errRetry). When ctx ends during the push,
// nothing is recorded: the lease runs out and the next worker pushes again,
// which the city answers as a replay.
func (w *Worker) pushBatch(ctx context.Context, b store.OutboxBatch) error {
	log := w.Log.With(slog.String("county", b.County), slog.String("batch", b.ID))
	var content wengangv1.BatchContent
	if err := proto.Unmarshal(b.Content, &content); err != nil {
		return w.Store.BatchRefused(ctx, b.County, b.ID, fmt.Sprintf("本节点无法解码批次内容 (the sealed content does not decode): %v", err), w.Now())
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := w.City.PushBatch(cctx, &wengangv1.PushBatchRequest{Batch: &content, ContentHash: b.ContentHash})
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil && res.GetContentHash() != b.ContentHash {
		err = status.Errorf(codes.Internal, "the city acknowledged content hash %q, not %q", res.GetContentHash(), b.ContentHash)
	}
	if err == nil {
		detail, _ := json.Marshal(map[string]any{
			"received_at": res.GetReceivedAt().AsTime(), "received": res.GetReceived().GetCount(),
			"rejected": res.GetRejected().GetCount(), "conflict": res.GetConflict().GetCount(),
		})
		log.LogAttrs(ctx, slog.LevelInfo, "batch delivered", slog.Int64("received", res.GetReceived().GetCount()),
			slog.Int64("rejected", res.GetRejected().GetCount()), slog.Int64("conflict", res.GetConflict().GetCount()))
		return w.Store.BatchDelivered(ctx, b.County, b.ID, w.Now(), string(detail))
	}
	code := codeOf(err)
	reason := fmt.Sprintf("%s: %s", code, messageOf(err))
	if permanent(code, false) {
		log.LogAttrs(ctx, slog.LevelWarn, "batch refused by the city", slog.String("reason", reason))
		return w.Store.BatchRefused(ctx, b.County, b.ID, reason, w.Now())
	}
	next := w.Now().Add(w.Backoff.Delay(b.PushAttempts + 1))
	log.LogAttrs(ctx, slog.LevelWarn, "batch push failed; will retry", slog.String("reason", reason), slog.Time("next", next))
	if err := w.Store.BatchPushFailed(ctx, b.County, b.ID, reason, next); err != nil {
		return err
	}
	return errRetry
}

func (w *Worker) pushCorrections(ctx context.Context) error {
	return drain(ctx, func() ([]store.OutboxCorrection, error) {
		return w.Store.ClaimDueCorrections(ctx, w.Counties, w.Now(), lease, claimLimit)
	}, w.pushCorrection)
}

// pushCorrection pushes one corrected account and records the outcome, as
// pushBatch does for batches.
func (w *Worker) pushCorrection(ctx context.Context, c store.OutboxCorrection) error {
	log := w.Log.With(slog.String("county", c.County), slog.String("correction", c.ID))
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := w.City.PushAccountCorrection(cctx, &wengangv1.PushAccountCorrectionRequest{
		CorrectionId: c.ID, County: c.County, BatchId: c.BatchID, Uscc: c.USCC,
		Account: &wengangv1.Account{
			Kind: wengangv1.AccountKind(c.Account.Kind), Bank: c.Account.Bank, BankCode: c.Account.BankCode,
			AccountNo: c.Account.AccountNo, AccountName: c.Account.AccountName,
		},
		Reason: c.Reason, CorrectedBy: c.CorrectedBy,
	})
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		log.LogAttrs(ctx, slog.LevelInfo, "corrected account delivered")
		return w.Store.CorrectionAccepted(ctx, c.County, c.ID, res.GetInstructionId(), w.Now())
	}
	code := codeOf(err)
	reason := fmt.Sprintf("%s: %s", code, messageOf(err))
	if permanent(code, true) {
		log.LogAttrs(ctx, slog.LevelWarn, "corrected account refused by the city", slog.String("reason", reason))
		return w.Store.CorrectionRefused(ctx, c.County, c.ID, reason, w.Now())
	}
	next := w.Now().Add(w.Backoff.Delay(c.PushAttempts + 1))
	log.LogAttrs(ctx, slog.LevelWarn, "corrected account push failed; will retry", slog.String("reason", reason), slog.Time("next", next))
	if err := w.Store.CorrectionPushFailed(ctx, c.County, c.ID, reason, next); err != nil {
		return err
	}
	return errRetry
}

// pull pulls county's decisions after its cursor until the city has no
// more, applying each page with the cursor that follows it.
func (w *Worker) pull(ctx context.Context, county string) error {
	for {
		cursor, _, err := w.Store.SyncCursor(ctx, county)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		res, err := w.City.PullDecisions(cctx, &wengangv1.PullDecisionsRequest{Cursor: cursor, Limit: pullLimit, Counties: []string{county}})
		cancel()
		if err != nil {
			return fmt.Errorf("pull decisions of county %s: %w", county, err)
		}
		ds, err := decisions(res.GetDecisions())
		if err != nil {
			return fmt.Errorf("pull decisions of county %s: %w", county, err)
		}
		n, err := w.Store.ApplyDecisions(ctx, county, ds, res.GetNextCursor(), w.Now())
		if err != nil {
			return err
		}
		if n > 0 {
			w.Log.LogAttrs(ctx, slog.LevelInfo, "city decisions applied", slog.String("county", county), slog.Int("count", n))
		}
		if !res.GetMore() {
			return nil
		}
	}
}

// codeOf returns the gRPC code of an error of a call to the city.
func codeOf(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return codes.Code(ce.Code())
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// messageOf returns the city's words of an error.
func messageOf(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// permanent reports whether the city refused for good: the request is
// malformed, a different content under a used id, or not for a county the
// node may act for — pushing again cannot succeed. A correction whose
// batch or item the city does not know is refused for good too. Anything
// else (Unavailable, DeadlineExceeded, ResourceExhausted, Aborted,
// Internal, Unknown, Canceled…) is retried.
func permanent(c codes.Code, correction bool) bool {
	switch c {
	case codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated:
		return true
	case codes.NotFound:
		return correction
	}
	return false
}
