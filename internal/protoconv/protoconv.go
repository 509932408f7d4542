// Package protoconv converts between the domain types of policy/ and the
// wengang.v1 protobuf messages, in one place for the node and the city.
// Conversions from the wire validate: a Date that does not exist, an
// unknown enum value, are errors wrapping fault.ErrInvalid.
package protoconv

import (
	"strings"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
)

// Date returns d as a message; the zero Date as nil.
func Date(d civil.Date) *wengangv1.Date {
	if d == 0 {
		return nil
	}
	return &wengangv1.Date{Year: int32(d.Year()), Month: int32(d.Month()), Day: int32(d.Day())}
}

// ToDate reads a Date message; nil is the zero Date.
func ToDate(d *wengangv1.Date) (civil.Date, error) {
	if d == nil {
		return 0, nil
	}
	v, err := civil.NewDate(int(d.GetYear()), int(d.GetMonth()), int(d.GetDay()))
	if err != nil {
		return 0, fault.New(fault.ErrInvalid, "date %04d-%02d-%02d: %v", d.GetYear(), d.GetMonth(), d.GetDay(), err)
	}
	return v, nil
}

// Month returns m as a message; the zero Month as nil.
func Month(m civil.Month) *wengangv1.Month {
	if m == 0 {
		return nil
	}
	return &wengangv1.Month{Year: int32(m.Year()), Month: int32(m.Month())}
}

// ToMonth reads a Month message; nil is the zero Month.
func ToMonth(m *wengangv1.Month) (civil.Month, error) {
	if m == nil {
		return 0, nil
	}
	v, err := civil.NewMonth(int(m.GetYear()), int(m.GetMonth()))
	if err != nil {
		return 0, fault.New(fault.ErrInvalid, "month %04d-%02d: %v", m.GetYear(), m.GetMonth(), err)
	}
	return v, nil
}

// Decision maps a decision; the enums share their order.
func Decision(d refund.Decision) wengangv1.Decision { return wengangv1.Decision(d) }

// ToDecision reads a decision.
func ToDecision(d wengangv1.Decision) (refund.Decision, error) {
	if d < wengangv1.Decision_DECISION_ELIGIBLE || d > wengangv1.Decision_DECISION_INELIGIBLE {
		return 0, fault.New(fault.ErrInvalid, "unknown decision %v", d)
	}
	return refund.Decision(d), nil
}

// reasons pairs each domain reason with its wire value (the wire order
// follows DOMAIN.md's tables, the domain's is alphabetical).
var reasons = map[refund.Reason]wengangv1.Reason{
	refund.NotServiceIndustry: wengangv1.Reason_REASON_NOT_SERVICE_INDUSTRY,
	refund.NotSME:             wengangv1.Reason_REASON_NOT_SME,
	refund.Deregistered:       wengangv1.Reason_REASON_DEREGISTERED,
	refund.InsufficientMonths: wengangv1.Reason_REASON_INSUFFICIENT_MONTHS,
	refund.Arrears:            wengangv1.Reason_REASON_ARREARS,
	refund.LayoffRateExceeded: wengangv1.Reason_REASON_LAYOFF_RATE_EXCEEDED,
	refund.CreditBlacklist:    wengangv1.Reason_REASON_CREDIT_BLACKLIST,
	refund.Zombie:             wengangv1.Reason_REASON_ZOMBIE,
	refund.IndustryPolicy:     wengangv1.Reason_REASON_INDUSTRY_POLICY,
	refund.Environment:        wengangv1.Reason_REASON_ENVIRONMENT,
	refund.NoContributions:    wengangv1.Reason_REASON_NO_CONTRIBUTIONS,
	refund.USCCChecksum:       wengangv1.Reason_REASON_USCC_CHECKSUM,
	refund.SizeMissing:        wengangv1.Reason_REASON_SIZE_MISSING,
	refund.AccountMissing:     wengangv1.Reason_REASON_ACCOUNT_MISSING,
}

var reasonsBack = func() map[wengangv1.Reason]refund.Reason {
	m := make(map[wengangv1.Reason]refund.Reason, len(reasons))
	for k, v := range reasons {
		m[v] = k
	}
	return m
}()

// Reasons lists a set's reasons in the domain's sorted order.
func Reasons(s refund.Reasons) []wengangv1.Reason {
	var out []wengangv1.Reason
	for _, r := range s.List() {
		out = append(out, reasons[r])
	}
	return out
}

// ToReasons reads a list of reasons into a set.
func ToReasons(rs []wengangv1.Reason) (refund.Reasons, error) {
	var s refund.Reasons
	for _, r := range rs {
		v, ok := reasonsBack[r]
		if !ok {
			return 0, fault.New(fault.ErrInvalid, "unknown reason %v", r)
		}
		s = s.With(v)
	}
	return s, nil
}

// Size maps a size class; unknown is UNSPECIFIED.
func Size(s refund.Size) wengangv1.SizeClass { return wengangv1.SizeClass(s) }

// ToSize reads a size class; UNSPECIFIED is unknown.
func ToSize(s wengangv1.SizeClass) (refund.Size, error) {
	if s < 0 || s > wengangv1.SizeClass_SIZE_CLASS_MICRO {
		return 0, fault.New(fault.ErrInvalid, "unknown size class %v", s)
	}
	return refund.Size(s), nil
}

// Status maps a registration status.
func Status(s refund.Status) wengangv1.RegistrationStatus { return wengangv1.RegistrationStatus(s) }

// ToStatus reads a registration status.
func ToStatus(s wengangv1.RegistrationStatus) (refund.Status, error) {
	if s < wengangv1.RegistrationStatus_REGISTRATION_STATUS_ACTIVE || s > wengangv1.RegistrationStatus_REGISTRATION_STATUS_REVOKED {
		return 0, fault.New(fault.ErrInvalid, "unknown registration status %v", s)
	}
	return refund.Status(s), nil
}

// Account returns a as a message, or nil when it has no kind (no account).
func Account(a refund.Account) *wengangv1.Account {
	if a.Kind == 0 {
		return nil
	}
	return &wengangv1.Account{
		Kind: wengangv1.AccountKind(a.Kind), Bank: a.Bank, BankCode: a.BankCode,
		AccountNo: a.AccountNo, AccountName: a.AccountName,
	}
}

// ToAccount reads an account of a unit; nil is "no account".
func ToAccount(uscc string, a *wengangv1.Account) (refund.Account, error) {
	if a == nil {
		return refund.Account{}, nil
	}
	k := refund.AccountKind(a.GetKind())
	if k != refund.AccountCorporate && k != refund.AccountSocialInsurance {
		return refund.Account{}, fault.New(fault.ErrInvalid, "account kind: want corporate or social_insurance, got %v", a.GetKind())
	}
	if a.GetAccountNo() == "" {
		return refund.Account{}, fault.New(fault.ErrInvalid, "account_no: required")
	}
	return refund.Account{USCC: uscc, Kind: k, Bank: a.GetBank(), BankCode: a.GetBankCode(), AccountNo: a.GetAccountNo(), AccountName: a.GetAccountName()}, nil
}

// Params returns policy parameters as a message.
func Params(p refund.Params) *wengangv1.PolicyParameters {
	smallBy := wengangv1.SmallBy_SMALL_BY_YEAR_END
	if p.SmallBy == refund.SmallByYearStart {
		smallBy = wengangv1.SmallBy_SMALL_BY_YEAR_START
	}
	return &wengangv1.PolicyParameters{
		Id: p.ID, Name: p.Name, PolicyYear: int32(p.PolicyYear), RateBp: int32(p.RateBP),
		LayoffLimit:       &wengangv1.Ratio{Numerator: p.LayoffLimit.Num, Denominator: p.LayoffLimit.Den},
		SmallLayoffLimit:  &wengangv1.Ratio{Numerator: p.SmallLayoffLimit.Num, Denominator: p.SmallLayoffLimit.Den},
		SmallHeadcount:    p.SmallHeadcount,
		SmallBy:           smallBy,
		MonthsRequired:    int32(p.MonthsRequired),
		MonthsThrough:     Month(p.MonthsThrough),
		PublicityWorkdays: int32(p.PublicityWorkdays),
		CountyPayBy:       Date(p.CountyPayBy),
		AllPaidBy:         Date(p.AllPaidBy),
	}
}

// Tally returns a count and an amount as a message.
func Tally(count, fen int64) *wengangv1.Tally {
	return &wengangv1.Tally{Count: count, AmountFen: fen}
}

// The stores keep the wire's state enums as keys: the value's name without
// its enum prefix, in lower case ("in_publicity" for
// ITEM_STATE_IN_PUBLICITY). An unknown key is the UNSPECIFIED value.

// ItemState returns the wire value of an item state key.
func ItemState(key string) wengangv1.ItemState {
	return wengangv1.ItemState(wengangv1.ItemState_value["ITEM_STATE_"+strings.ToUpper(key)])
}

// DecisionKind returns the wire value of a city decision kind key.
func DecisionKind(key string) wengangv1.CityDecisionKind {
	return wengangv1.CityDecisionKind(wengangv1.CityDecisionKind_value["CITY_DECISION_KIND_"+strings.ToUpper(key)])
}

// DecisionKindKey is the inverse of DecisionKind; "" for a value of no name.
func DecisionKindKey(k wengangv1.CityDecisionKind) string {
	name, ok := wengangv1.CityDecisionKind_name[int32(k)]
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(name, "CITY_DECISION_KIND_"))
}

// RejectionCode returns the wire value of a rejection code, kept as its
// name without the prefix ("USCC_INVALID").
func RejectionCode(code string) wengangv1.RejectionCode {
	return wengangv1.RejectionCode(wengangv1.RejectionCode_value["REJECTION_CODE_"+strings.ToUpper(code)])
}

// RejectionCodeKey is the inverse of RejectionCode.
func RejectionCodeKey(c wengangv1.RejectionCode) string {
	return strings.TrimPrefix(c.String(), "REJECTION_CODE_")
}
