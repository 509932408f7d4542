package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/rpc"
	"wengang/node/sms"
	"wengang/node/store"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// NotifyUnits queues the refund notice (推送) for the screening's units to
// be paid: every unit whose current decision is eligible, or the listed
// ones. The text quotes the refund in yuan to the fen and the county
// agency's phone from Phones; a county without one is a configuration error
// (FailedPrecondition). A unit is notified at most once per screening: a
// repeat queues nothing and answers with the same total. Kick wakes the
// sender when something was queued.
func (s *NotificationService) NotifyUnits(ctx context.Context, req *connect.Request[wengangv1.NotifyUnitsRequest]) (*connect.Response[wengangv1.NotifyUnitsResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	id := noticeScreeningID(&bad, m.GetScreeningId())
	usccs := noticeUSCCs(&bad, "usccs", m.GetUsccs())
	if err := bad.Err(); err != nil {
		return nil, err
	}
	phone := strings.TrimSpace(s.Phones[m.GetCounty()])
	if phone == "" {
		return nil, fault.New(fault.ErrFailedPrecondition,
			"no agency phone is configured for county %s: the SMS must say whom to call with an objection (未配置该县区经办机构电话)", m.GetCounty())
	}
	counts, err := s.Store.QueueNotifications(ctx, m.GetCounty(), id, usccs, s.Now(), caller(ctx),
		func(f store.ScreeningFacts, u store.NoticeUnit) (string, error) {
			return sms.Notice{
				Signature: sms.DefaultSignature,
				UnitName:  u.Name,
				// The plan pays in the year after the policy year whose
				// contributions make the base (2022 for 2021).
				PlanYear:  f.Policy.PolicyYear + 1,
				RefundFen: u.RefundFen,
				Phone:     phone,
			}.Text()
		})
	if err != nil {
		return nil, err
	}
	if counts.Queued > 0 && s.Kick != nil {
		s.Kick()
	}
	return connect.NewResponse(&wengangv1.NotifyUnitsResponse{
		QueuedCount: counts.Queued, AlreadyCount: counts.Already, NoMobileCount: counts.NoMobile,
	}), nil
}

// ListNotifications lists notifications, by USCC, with the enterprise's
// latest response.
func (s *NotificationService) ListNotifications(ctx context.Context, req *connect.Request[wengangv1.ListNotificationsRequest]) (*connect.Response[wengangv1.ListNotificationsResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	f := store.NotificationFilter{Limit: noticePageSize(&bad, m.GetPageSize(), 100)}
	if m.GetScreeningId() != "" {
		f.ScreeningID = noticeScreeningID(&bad, m.GetScreeningId())
	}
	if m.GetUscc() != "" {
		f.USCC = uscc.Normalize(m.GetUscc())
	}
	for _, st := range m.GetStates() {
		v, ok := notificationStates[st]
		if !ok {
			bad.Add("states", "unknown notification state %v", st)
			continue
		}
		f.States = append(f.States, v)
	}
	if t := m.GetPageToken(); t != "" {
		var ok bool
		if f.AfterUSCC, f.AfterID, ok = decodeNoticeCursor(t); !ok {
			bad.Add("page_token", "not a page token of ListNotifications")
		}
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	ns, err := s.Store.ListNotifications(ctx, m.GetCounty(), f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListNotificationsResponse{}
	if len(ns) > limit {
		ns = ns[:limit]
		last := ns[limit-1]
		res.NextPageToken = encodeNoticeCursor(last.USCC, last.ID)
	}
	for _, n := range ns {
		res.Notifications = append(res.Notifications, notificationProto(n))
	}
	return connect.NewResponse(res), nil
}

// RecordResponse records an enterprise's confirmation or objection. An
// objection opens and keeps the unit out of batches until a reviewer
// resolves it (ResolveObjection).
func (s *NotificationService) RecordResponse(ctx context.Context, req *connect.Request[wengangv1.RecordResponseRequest]) (*connect.Response[wengangv1.RecordResponseResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	now := s.Now()
	var bad rpc.Fields
	r := store.NewResponse{
		ScreeningID:    noticeScreeningID(&bad, m.GetScreeningId()),
		USCC:           uscc.Normalize(m.GetUscc()),
		Text:           strings.TrimSpace(m.GetText()),
		IdempotencyKey: m.GetIdempotencyKey(),
		ReceivedAt:     now,
	}
	if r.USCC == "" {
		bad.Add("uscc", "required")
	}
	switch m.GetKind() {
	case wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED:
		r.Kind = store.ResponseConfirmed
	case wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED:
		r.Kind = store.ResponseObjected
		if r.Text == "" {
			bad.Add("text", "an objection needs what the enterprise said (异议内容必填)")
		}
	default:
		bad.Add("kind", "want CONFIRMED or OBJECTED")
	}
	channel, ok := responseChannels[m.GetChannel()]
	if !ok {
		bad.Add("channel", "unknown channel %v", m.GetChannel())
	}
	r.Channel = channel
	if m.GetIdempotencyKey() == "" {
		bad.Add("idempotency_key", "required")
	}
	if m.ReceivedAt != nil {
		if err := m.GetReceivedAt().CheckValid(); err != nil {
			bad.Add("received_at", "%v", err)
		} else if r.ReceivedAt = m.GetReceivedAt().AsTime(); r.ReceivedAt.After(now.Add(5 * time.Minute)) {
			bad.Add("received_at", "in the future")
		}
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	// What the key is used for: the request without its key (received_at
	// as given, so that a retry that leaves it unset matches).
	fp := proto.CloneOf(m)
	fp.IdempotencyKey = ""
	r.RequestSHA256 = noticeDigest(fp)
	got, err := s.Store.RecordResponse(ctx, m.GetCounty(), r, caller(ctx), now)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.RecordResponseResponse{Response: responseProto(got)}), nil
}

// ListResponses lists recorded responses, newest first.
func (s *NotificationService) ListResponses(ctx context.Context, req *connect.Request[wengangv1.ListResponsesRequest]) (*connect.Response[wengangv1.ListResponsesResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	f := store.ResponseFilter{Limit: noticePageSize(&bad, m.GetPageSize(), 100)}
	if m.GetScreeningId() != "" {
		f.ScreeningID = noticeScreeningID(&bad, m.GetScreeningId())
	}
	switch m.GetKind() {
	case wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_UNSPECIFIED:
	case wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED:
		f.Kind = store.ResponseConfirmed
	case wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED:
		f.Kind = store.ResponseObjected
	default:
		bad.Add("kind", "unknown kind %v", m.GetKind())
	}
	if m.GetObjectionState() != wengangv1.ObjectionState_OBJECTION_STATE_UNSPECIFIED {
		var ok bool
		if f.Objection, ok = objectionStates[m.GetObjectionState()]; !ok {
			bad.Add("objection_state", "unknown objection state %v", m.GetObjectionState())
		}
	}
	if t := m.GetPageToken(); t != "" {
		id, err := strconv.ParseInt(t, 10, 64)
		if err != nil || id <= 0 {
			bad.Add("page_token", "not a page token of ListResponses")
		}
		f.BeforeID = id
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	f.Limit++
	rs, err := s.Store.ListResponses(ctx, m.GetCounty(), f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListResponsesResponse{}
	if len(rs) > limit {
		rs = rs[:limit]
		res.NextPageToken = strconv.FormatInt(rs[limit-1].ID, 10)
	}
	for _, r := range rs {
		res.Responses = append(res.Responses, responseProto(r))
	}
	return connect.NewResponse(res), nil
}

// ResolveObjection settles an enterprise's objection (a reviewer's act).
//
// The reading of the two outcomes: the objection is the enterprise's (it
// declines the refund, disputes the amount or the account). Upheld (成立)
// means the agency accepts it: the unit stays out of every batch of this
// screening, whatever its decision, until the data are corrected (or the
// unit excluded by review) and a new screening is run. Dismissed (不成立)
// means the objection does not change the refund: the unit may be batched
// as its decision says. Neither outcome changes the unit's decision, which
// stays as the rules and the reviews set it.
func (s *NotificationService) ResolveObjection(ctx context.Context, req *connect.Request[wengangv1.NotificationServiceResolveObjectionRequest]) (*connect.Response[wengangv1.NotificationServiceResolveObjectionResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	id, ok := parseNoticeID(m.GetCounty(), "R", m.GetResponseId())
	if !ok {
		bad.Add("response_id", "not a response id of county %s (such as %s)", m.GetCounty(), store.ResponseID(m.GetCounty(), 1))
	}
	var resolution store.ObjectionState
	switch m.GetResolution() {
	case wengangv1.ObjectionState_OBJECTION_STATE_UPHELD:
		resolution = store.ObjectionUpheld
	case wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED:
		resolution = store.ObjectionDismissed
	default:
		bad.Add("resolution", "want UPHELD or DISMISSED")
	}
	reason := strings.TrimSpace(m.GetReason())
	if reason == "" {
		bad.Add("reason", "a written reason is required (须填写理由)")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	got, err := s.Store.ResolveObjection(ctx, m.GetCounty(), id, resolution, reason, caller(ctx), s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.NotificationServiceResolveObjectionResponse{Response: responseProto(got)}), nil
}

// noticeScreeningID reads a screening id of a request, adding a violation
// to bad when it is not one.
func noticeScreeningID(bad *rpc.Fields, s string) int64 {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		if s == "" {
			bad.Add("screening_id", "required")
		} else {
			bad.Add("screening_id", "%q is not a screening id", s)
		}
		return 0
	}
	return id
}

// noticeUSCCs normalizes a request's list of units, dropping repeats.
func noticeUSCCs(bad *rpc.Fields, field string, in []string) []string {
	var out []string
	seen := make(map[string]bool, len(in))
	for i, u := range in {
		code := uscc.Normalize(u)
		if code == "" {
			bad.Add(fmt.Sprintf("%s[%d]", field, i), "empty")
			continue
		}
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	return out
}

// noticePageSize reads a page size: 0 is def, more than 1000 is 1000.
func noticePageSize(bad *rpc.Fields, n int32, def int) int {
	switch {
	case n < 0:
		bad.Add("page_size", "must not be negative")
		return def
	case n == 0:
		return def
	case n > 1000:
		return 1000
	}
	return int(n)
}

// noticeDigest is the SHA-256 of m's deterministic encoding.
func noticeDigest(m proto.Message) [32]byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err) // a valid message always encodes
	}
	return sha256.Sum256(b)
}

// encodeNoticeCursor and decodeNoticeCursor make the opaque page token of
// ListNotifications from the last notification of a page.
func encodeNoticeCursor(uscc string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10) + ":" + uscc))
}

func decodeNoticeCursor(t string) (string, int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return "", 0, false
	}
	idText, code, ok := strings.Cut(string(b), ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 {
		return "", 0, false
	}
	return code, id, true
}

// parseNoticeID reads an id such as 371502-R7 (kind "R") of county.
func parseNoticeID(county, kind, s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, county+"-"+kind)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

var notificationStates = map[wengangv1.NotificationState]store.NotificationState{
	wengangv1.NotificationState_NOTIFICATION_STATE_QUEUED:    store.NotificationQueued,
	wengangv1.NotificationState_NOTIFICATION_STATE_SENT:      store.NotificationSent,
	wengangv1.NotificationState_NOTIFICATION_STATE_DELIVERED: store.NotificationDelivered,
	wengangv1.NotificationState_NOTIFICATION_STATE_FAILED:    store.NotificationFailed,
	wengangv1.NotificationState_NOTIFICATION_STATE_NO_MOBILE: store.NotificationNoMobile,
}

var responseChannels = map[wengangv1.ResponseChannel]string{
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_UNSPECIFIED: "",
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_SMS:         "sms",
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_PHONE:       "phone",
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_PORTAL:      "portal",
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_COUNTER:     "counter",
	wengangv1.ResponseChannel_RESPONSE_CHANNEL_OTHER:       "other",
}

var objectionStates = map[wengangv1.ObjectionState]store.ObjectionState{
	wengangv1.ObjectionState_OBJECTION_STATE_OPEN:      store.ObjectionOpen,
	wengangv1.ObjectionState_OBJECTION_STATE_UPHELD:    store.ObjectionUpheld,
	wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED: store.ObjectionDismissed,
}

// noticeEnum returns the key of m whose value is v, or the zero key.
func noticeEnum[K comparable, V comparable](m map[K]V, v V) K {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	var zero K
	return zero
}

// noticeTime is t as a Timestamp; the zero time as nil.
func noticeTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func notificationProto(n store.Notification) *wengangv1.Notification {
	out := &wengangv1.Notification{
		NotificationId:   n.MessageID(),
		County:           n.County,
		ScreeningId:      strconv.FormatInt(n.ScreeningID, 10),
		Uscc:             n.USCC,
		Name:             n.Name,
		Mobile:           n.Mobile,
		Text:             n.Text,
		State:            noticeEnum(notificationStates, n.State),
		Attempts:         int32(n.Attempts),
		GatewayMessageId: n.GatewayMessageID,
		LastError:        n.LastError,
		QueuedAt:         noticeTime(n.QueuedAt),
		SentAt:           noticeTime(n.SentAt),
		DeliveredAt:      noticeTime(n.DeliveredAt),
	}
	if n.Response != nil {
		out.Response = responseProto(*n.Response)
	}
	return out
}

func responseProto(r store.Response) *wengangv1.EnterpriseResponse {
	kind := wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED
	if r.Kind == store.ResponseObjected {
		kind = wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED
	}
	return &wengangv1.EnterpriseResponse{
		ResponseId:       r.ResponseID(),
		County:           r.County,
		ScreeningId:      strconv.FormatInt(r.ScreeningID, 10),
		Uscc:             r.USCC,
		Kind:             kind,
		Text:             r.Text,
		Channel:          noticeEnum(responseChannels, r.Channel),
		ReceivedAt:       noticeTime(r.ReceivedAt),
		RecordedBy:       r.RecordedBy,
		RecordedAt:       noticeTime(r.RecordedAt),
		ObjectionState:   noticeEnum(objectionStates, r.Objection),
		ResolutionReason: r.ResolutionReason,
		ResolvedBy:       r.ResolvedBy,
		ResolvedAt:       noticeTime(r.ResolvedAt),
	}
}
