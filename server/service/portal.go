package service

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/civil"
	"wengang/policy/county"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/store"
)

// Portal page sizes (portal.proto).
const (
	roundsPageDefault = 20
	roundsPageMax     = 100
	entriesPageMax    = 500
	entriesPageSize   = 50
	maxPublicQuery    = 64
	maxObjectionText  = 2000
)

// ListPublicRounds lists the rounds shown to the public on the business
// date, newest start date first.
func (s *PortalService) ListPublicRounds(ctx context.Context, req *connect.Request[wengangv1.ListPublicRoundsRequest]) (*connect.Response[wengangv1.ListPublicRoundsResponse], error) {
	size := pageSize(req.Msg.GetPageSize(), roundsPageDefault, roundsPageMax)
	off, err := parsePageToken(req.Msg.GetPageToken(), "rounds")
	if err != nil {
		return nil, err
	}
	today, names := s.Today(), county.NewRegistry(county.Liaocheng())
	rounds, err := s.Store.PublicRounds(ctx, today)
	if err != nil {
		return nil, err
	}
	resp := &wengangv1.ListPublicRoundsResponse{}
	for _, r := range rounds[min(off, len(rounds)):min(off+size, len(rounds))] {
		resp.Rounds = append(resp.Rounds, publicRound(r, today, names))
	}
	if off+size < len(rounds) {
		resp.NextPageToken = pageToken(off+size, "rounds")
	}
	return connect.NewResponse(resp), nil
}

// ListPublicity lists one page of a public round's enterprises.
func (s *PortalService) ListPublicity(ctx context.Context, req *connect.Request[wengangv1.ListPublicityRequest]) (*connect.Response[wengangv1.ListPublicityResponse], error) {
	m := req.Msg
	q := uscc.Normalize(m.GetQuery())
	var bad rpc.Fields
	if utf8.RuneCountInString(q) > maxPublicQuery {
		bad.Add("query", "at most %d characters (搜索内容不能超过64个字符)", maxPublicQuery)
	}
	scope := "list:" + m.GetRoundId() + "\x00" + q + "\x00" + m.GetCounty()
	off, err := parsePageToken(m.GetPageToken(), scope)
	if err != nil {
		bad.Add("page_token", "not a page token of this list (分页标记无效)")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	today, names := s.Today(), county.NewRegistry(county.Liaocheng())
	r, err := s.Store.PublicRound(ctx, m.GetRoundId(), today)
	if err != nil {
		return nil, err
	}
	size := pageSize(m.GetPageSize(), entriesPageSize, entriesPageMax)
	entries, matched, err := s.Store.ListPublicity(ctx, store.PublicityFilter{RoundID: r.ID, Query: q, County: m.GetCounty(), Offset: off, Limit: size})
	if err != nil {
		return nil, err
	}
	resp := &wengangv1.ListPublicityResponse{Round: publicRound(r, today, names), MatchCount: matched}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, &wengangv1.PublicityEntry{Name: e.Name, Uscc: e.USCC, County: e.County,
			CountyName: names.Name(e.County), AmountFen: e.AmountFen})
	}
	if int64(off+size) < matched {
		resp.NextPageToken = pageToken(off+size, scope)
	}
	return connect.NewResponse(resp), nil
}

// SubmitObjection records an objection from the public form, once per
// idempotency key.
func (s *PortalService) SubmitObjection(ctx context.Context, req *connect.Request[wengangv1.SubmitObjectionRequest]) (*connect.Response[wengangv1.SubmitObjectionResponse], error) {
	m := req.Msg
	code := uscc.Normalize(m.GetUscc())
	name, phone, text := strings.TrimSpace(m.GetContactName()), strings.TrimSpace(m.GetContactPhone()), strings.TrimSpace(m.GetText())
	var bad rpc.Fields
	if m.GetRoundId() == "" {
		bad.Add("round_id", "required (请指定公示批次)")
	}
	if code == "" {
		bad.Add("uscc", "required (请填写统一社会信用代码)")
	}
	if name == "" && phone == "" {
		bad.Add("contact_name", "a contact is required (请填写联系人或联系电话)")
	}
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		bad.Add("text", "required (请填写异议内容)")
	case n > maxObjectionText:
		bad.Add("text", "%d characters, at most %d (异议内容不能超过2000个字符)", n, maxObjectionText)
	}
	if m.GetIdempotencyKey() == "" {
		bad.Add("idempotency_key", "required")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	o, err := s.Store.RecordObjection(ctx, store.NewObjection{
		RoundID: m.GetRoundId(), USCC: code, ContactName: name, ContactPhone: phone, Text: text,
		Channel: "portal", RecordedBy: "portal", ReceivedAt: s.Now(), IdempotencyKey: "portal-rpc-" + m.GetIdempotencyKey(),
		Today: s.Today(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.SubmitObjectionResponse{ObjectionId: o.ID, ReceivedAt: timestamppb.New(o.ReceivedAt.UTC().Truncate(time.Microsecond))}), nil
}

// publicRound returns r as the public sees it on business date today.
func publicRound(r store.PublicRound, today civil.Date, names *county.Registry) *wengangv1.PublicRound {
	state := wengangv1.RoundState_ROUND_STATE_ENDED
	switch {
	case r.Released:
		state = wengangv1.RoundState_ROUND_STATE_RELEASED
	case r.InPublicity(today):
		state = wengangv1.RoundState_ROUND_STATE_IN_PUBLICITY
	}
	out := &wengangv1.PublicRound{
		RoundId: r.ID, Title: r.Title, StartDate: protoconv.Date(r.StartDate), EndDate: protoconv.Date(r.EndDate), State: state,
		ObjectionContact: &wengangv1.ObjectionContact{Office: r.ContactOffice, Phone: r.ContactPhone, Address: r.ContactAddress, Email: r.ContactEmail},
		EntryCount:       r.Listed.Count, TotalFen: r.Listed.AmountFen,
	}
	for _, c := range r.Counties {
		out.Counties = append(out.Counties, &wengangv1.PublicCounty{Code: c, Name: names.Name(c)})
	}
	return out
}

// pageSize returns the page size asked for, or def when none, at most max.
func pageSize(asked int32, def, most int) int {
	if asked <= 0 {
		return def
	}
	return min(int(asked), most)
}

// pageToken returns the token of the page starting at offset of the list
// named by scope (a round, a query and a county), so that a token is not
// taken for another list.
func pageToken(offset int, scope string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("1\x00" + strconv.Itoa(offset) + "\x00" + scope))
}

// parsePageToken returns the offset of a token pageToken made for scope;
// "" is the first page. Anything else is fault.ErrInvalid.
func parsePageToken(tok, scope string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	bad := fault.New(fault.ErrInvalid, "page token: not one of this list (分页标记无效)")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, bad
	}
	parts := strings.SplitN(string(b), "\x00", 3)
	if len(parts) != 3 || parts[0] != "1" || parts[2] != scope {
		return 0, bad
	}
	off, err := strconv.Atoi(parts[1])
	if err != nil || off < 0 {
		return 0, bad
	}
	return off, nil
}
