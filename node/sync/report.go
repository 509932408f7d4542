package sync

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/protoconv"
	"wengang/node/store"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
)

// pushReports pushes every screening report that is due, as pushBatches
// pushes batches: it claims no more after a push that must be retried.
func (w *Worker) pushReports(ctx context.Context) error {
	return drain(ctx, func() ([]store.ScreeningReport, error) {
		return w.Store.ReportDue(ctx, w.Counties, w.Now(), lease, claimLimit)
	}, w.pushReport)
}

// pushReport tells the city one screening's tallies and records the
// outcome: acknowledged (with the revision the city holds), refused for
// good (that revision is not pushed again; a later one is), or to be
// retried (errRetry). When ctx ends during the call, nothing is recorded:
// the lease runs out and the report is pushed again, which the city answers
// as a replay.
func (w *Worker) pushReport(ctx context.Context, r store.ScreeningReport) error {
	id := strconv.FormatInt(r.ScreeningID, 10)
	log := w.Log.With(slog.String("county", r.County), slog.String("screening", id), slog.Int64("revision", r.Revision))
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := w.City.ReportScreening(cctx, &wengangv1.ReportScreeningRequest{Report: reportMessage(r)})
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		log.LogAttrs(ctx, slog.LevelDebug, "screening report delivered", slog.Int64("held", res.GetRevision()))
		return w.Store.RecordReportPushed(ctx, r.County, r.ScreeningID, r.Revision, res.GetRevision(), w.Now())
	}
	code := codeOf(err)
	reason := fmt.Sprintf("%s: %s", code, messageOf(err))
	if permanent(code, false) {
		log.LogAttrs(ctx, slog.LevelWarn, "screening report refused by the city", slog.String("reason", reason))
		return w.Store.RecordReportFailure(ctx, r.County, r.ScreeningID, r.Revision, reason, false, w.Now())
	}
	next := w.Now().Add(w.Backoff.Delay(r.PushAttempts + 1))
	log.LogAttrs(ctx, slog.LevelWarn, "screening report push failed; will retry", slog.String("reason", reason), slog.Time("next", next))
	if err := w.Store.RecordReportFailure(ctx, r.County, r.ScreeningID, r.Revision, reason, true, next); err != nil {
		return err
	}
	return errRetry
}

// reportMessage returns r as the city reads it.
func reportMessage(r store.ScreeningReport) *wengangv1.ScreeningReport {
	m := &wengangv1.ScreeningReport{
		County: r.County, ScreeningId: strconv.FormatInt(r.ScreeningID, 10), DatasetHash: r.DatasetHash,
		AsOf: protoconv.Date(r.AsOf), PolicyId: r.PolicyID,
		Screened: decisionTally(r.Screened), Reviewed: decisionTally(r.Reviewed), Revision: r.Revision,
	}
	if !r.RunAt.IsZero() {
		m.RunAt = timestamppb.New(r.RunAt)
	}
	return m
}

// decisionTally returns t as a message; ineligible units carry no amount.
func decisionTally(t store.Tally) *wengangv1.DecisionTally {
	return &wengangv1.DecisionTally{
		UnitCount:  t.Units,
		Eligible:   protoconv.Tally(t.Count[refund.Eligible], t.Fen[refund.Eligible]),
		Hold:       protoconv.Tally(t.Count[refund.Hold], t.Fen[refund.Hold]),
		Ineligible: protoconv.Tally(t.Count[refund.Ineligible], 0),
	}
}
