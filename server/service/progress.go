package service

import (
	"context"
	"slices"

	"connectrpc.com/connect"

	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/county"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/store"
)

// GetProgress returns the dashboard as of the business date: one line per
// county (every county of the city when none is asked for, the caller's
// own when it is a county's person) and the total, against the deadlines
// of the default policy parameters.
func (s *ProgressService) GetProgress(ctx context.Context, req *connect.Request[wengangv1.GetProgressRequest]) (*connect.Response[wengangv1.GetProgressResponse], error) {
	params, err := s.Params(refund.DefaultParamsID)
	if err != nil {
		return nil, err
	}
	counties := slices.Clone(req.Msg.GetCounties())
	if p, ok := access.PrincipalFrom(ctx); ok && p.Domain != "" && p.Domain != access.DomainCity {
		// County roles see their own county only.
		for _, c := range counties {
			if c != p.Domain {
				return nil, fault.New(fault.ErrPermissionDenied, "county %s may not read the progress of county %s (无权查看其他县进度)", p.Domain, c)
			}
		}
		counties = []string{p.Domain}
	}
	byCounty, err := s.Store.Progress(ctx, counties)
	if err != nil {
		return nil, err
	}
	names := county.NewRegistry(county.Liaocheng())
	if len(counties) == 0 {
		for _, c := range county.Liaocheng() {
			counties = append(counties, c.Code)
		}
		for c := range byCounty {
			counties = append(counties, c)
		}
	}
	slices.Sort(counties)
	counties = slices.Compact(counties)

	today := s.Today()
	resp := &wengangv1.GetProgressResponse{
		AsOf: protoconv.Date(today), CountyPayBy: protoconv.Date(params.CountyPayBy), AllPaidBy: protoconv.Date(params.AllPaidBy),
	}
	var total store.CountyProgress
	countyMet, countyMissed, finalMet, finalMissed := 0, 0, 0, 0
	for _, c := range counties {
		p := byCounty[c]
		if p == nil {
			p = &store.CountyProgress{County: c}
		}
		line := progressLine(*p, names.Name(c))
		line.CountyDeadline = CountyDeadline(*p, params.CountyPayBy, today)
		line.FinalDeadline = FinalDeadline(*p, params.AllPaidBy, today)
		resp.Counties = append(resp.Counties, line)
		switch line.CountyDeadline {
		case wengangv1.DeadlineStatus_DEADLINE_STATUS_MET:
			countyMet++
		case wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED:
			countyMissed++
		}
		switch line.FinalDeadline {
		case wengangv1.DeadlineStatus_DEADLINE_STATUS_MET:
			finalMet++
		case wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED:
			finalMissed++
		}
		addProgress(&total, *p)
	}
	resp.Total = progressLine(total, "合计")
	resp.Total.CountyDeadline = overall(countyMet, countyMissed, len(counties))
	resp.Total.FinalDeadline = overall(finalMet, finalMissed, len(counties))
	return connect.NewResponse(resp), nil
}

// CountyDeadline is where county p stands on date today against payBy
// (every county pays someone by then): met when its first payment's value
// date is on or before payBy, missed when it is not and payBy has passed,
// open otherwise.
func CountyDeadline(p store.CountyProgress, payBy, today civil.Date) wengangv1.DeadlineStatus {
	switch {
	case p.FirstPaidOn != 0 && p.FirstPaidOn <= payBy:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MET
	case today > payBy || p.FirstPaidOn != 0:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED
	}
	return wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN
}

// FinalDeadline is where county p stands on date today against allBy
// (every eligible enterprise paid by then): met when the county has
// reported a screening, has paid as many enterprises as it found eligible
// and none of them is outstanding, returned or still before release, with
// the last payment on or before allBy; missed when that is not so and allBy
// has passed; open otherwise.
func FinalDeadline(p store.CountyProgress, allBy, today civil.Date) wengangv1.DeadlineStatus {
	done := p.ScreeningID != "" && p.Paid.Count >= p.Eligible.Count &&
		p.Outstanding.Count == 0 && p.Returned.Count == 0 && p.Received.Count == p.Paid.Count
	switch {
	case done && p.LastPaidOn <= allBy:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MET
	case today > allBy || done:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED
	}
	return wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN
}

// overall is the total's status: met when every county met it, missed
// when any missed, open otherwise.
func overall(met, missed, n int) wengangv1.DeadlineStatus {
	switch {
	case missed > 0:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED
	case met == n && n > 0:
		return wengangv1.DeadlineStatus_DEADLINE_STATUS_MET
	}
	return wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN
}

func progressLine(p store.CountyProgress, name string) *wengangv1.CountyProgress {
	t := func(x store.Tally) *wengangv1.Tally { return protoconv.Tally(x.Count, x.AmountFen) }
	return &wengangv1.CountyProgress{
		County: p.County, CountyName: name, ScreeningId: p.ScreeningID, AsOf: protoconv.Date(p.AsOf),
		ScreenedCount: p.Screened, Eligible: t(p.Eligible), Hold: t(p.Hold), Received: t(p.Received),
		Rejected: t(p.Rejected), InPublicity: t(p.InPublicity), Released: t(p.Released), Paid: t(p.Paid),
		Returned: t(p.Returned), Outstanding: t(p.Outstanding), FirstPaidOn: protoconv.Date(p.FirstPaidOn),
	}
}

// addProgress adds p's figures to total; the total's first payment is the
// earliest of any county.
func addProgress(total *store.CountyProgress, p store.CountyProgress) {
	add := func(to *store.Tally, x store.Tally) { to.Count += x.Count; to.AmountFen += x.AmountFen }
	total.Screened += p.Screened
	add(&total.Eligible, p.Eligible)
	add(&total.Hold, p.Hold)
	add(&total.Received, p.Received)
	add(&total.Rejected, p.Rejected)
	add(&total.InPublicity, p.InPublicity)
	add(&total.Released, p.Released)
	add(&total.Paid, p.Paid)
	add(&total.Returned, p.Returned)
	add(&total.Outstanding, p.Outstanding)
	if p.FirstPaidOn != 0 && (total.FirstPaidOn == 0 || p.FirstPaidOn < total.FirstPaidOn) {
		total.FirstPaidOn = p.FirstPaidOn
	}
	total.LastPaidOn = max(total.LastPaidOn, p.LastPaidOn)
}
