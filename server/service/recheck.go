package service

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"wengang/internal/protoconv"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/store"
)

// deterministic is the encoding whose SHA-256 is a batch's content hash
// (wengang.v1.BatchContent).
var deterministic = proto.MarshalOptions{Deterministic: true}

// maxFen bounds any one amount of the evidence (10^13 fen, a hundred
// billion yuan), so that sums cannot overflow.
const maxFen = 10_000_000_000_000

// recheck re-checks one item of batch bc under the policy p (known is false
// when the city does not know bc's policy id) at the batch's as-of date: the
// USCC, the county, the evidence against the claimed base and months, the
// refund against the base, eligibility under the rules and the account. It
// returns the item as the store keeps it, with every rejection found.
func recheck(p refund.Params, known bool, bc *wengangv1.BatchContent, asOf civil.Date, it *wengangv1.BatchItem) store.Item {
	out := store.Item{
		USCC: it.GetUscc(), Name: it.GetName(), MonthsPaid: it.GetMonthsPaid(),
		BaseFen: it.GetBaseFen(), RefundFen: it.GetRefundFen(), USCCVerified: it.GetUsccVerified(),
	}
	out.Encoded, _ = deterministic.Marshal(it) // a message that was just unmarshalled always marshals
	reject := func(code store.RejectionCode, format string, args ...any) {
		out.Rejections = append(out.Rejections, store.Rejection{Code: code, Detail: fmt.Sprintf(format, args...)})
	}

	st, err := uscc.Check(it.GetUscc())
	switch {
	case err != nil:
		reject(store.RejectUSCCInvalid, "统一社会信用代码格式错误 (not a unified social credit code): %v", err)
	case st == uscc.Hold && !it.GetUsccVerified():
		reject(store.RejectUSCCChecksum, "统一社会信用代码校验位错误且县级未核实 (the check character is wrong and the county did not verify the code)")
	}
	if it.GetCounty() != bc.GetCounty() {
		reject(store.RejectCountyMismatch, "明细参保地 %s 与批次所属县 %s 不符 (the item's county %s is not the batch's %s)",
			it.GetCounty(), bc.GetCounty(), it.GetCounty(), bc.GetCounty())
	}
	size, sizeErr := protoconv.ToSize(it.GetSizeClass())
	out.Size = size
	payee, payeeErr := protoconv.ToAccount(it.GetUscc(), it.GetPayee())
	if payeeErr == nil {
		out.Payee = payee
	}
	if !known {
		reject(store.RejectPolicyUnknown, "市级未知政策参数 %q (the city does not know policy parameters %q)", bc.GetPolicyId(), bc.GetPolicyId())
		return out
	}

	rows, base, problems := evidence(p, asOf, it.GetUscc(), it.GetContributions())
	out.RecomputedBaseFen, out.RecomputedRefundFen = base, p.Refund(base)
	for _, pr := range problems {
		reject(store.RejectEvidenceMismatch, "缴费明细有误 (malformed evidence): %s", pr)
	}
	if it.GetBaseFen() != base {
		reject(store.RejectEvidenceMismatch, "申报返还基数 %d 分与缴费明细合计 %d 分不符 (the claimed base %d fen is not the evidence's %d fen)",
			it.GetBaseFen(), base, it.GetBaseFen(), base)
	}
	status, statusErr := protoconv.ToStatus(it.GetRegistrationStatus())
	if sizeErr != nil || statusErr != nil {
		reject(store.RejectEvidenceMismatch, "企业划型或登记状态无效 (size class %v, registration status %v)", it.GetSizeClass(), it.GetRegistrationStatus())
	}
	if want := p.Refund(it.GetBaseFen()); it.GetRefundFen() != want {
		reject(store.RejectRefundMismatch, "申报返还金额 %d 分，按基数应为 %d 分 (the claimed refund %d fen should be %d fen, %d‱ of the base %d fen)",
			it.GetRefundFen(), want, it.GetRefundFen(), want, p.RateBP, it.GetBaseFen())
	}

	in := refund.Input{
		Unit: refund.Unit{
			USCC: it.GetUscc(), Name: it.GetName(), County: it.GetCounty(), Industry: it.GetIndustry(), Size: size, Status: status,
			HeadcountStart: it.GetHeadcountStart(), HeadcountEnd: it.GetHeadcountEnd(),
		},
		Contributions: rows,
	}
	if out.Payee.Kind != 0 {
		in.Accounts = []refund.Account{out.Payee}
	}
	screener := refund.Screener{Params: p, AsOf: asOf}
	res := screener.Decide(&in)
	if it.GetMonthsPaid() != res.MonthsPaid {
		reject(store.RejectEvidenceMismatch, "申报足额缴费月数 %d 与缴费明细 %d 不符 (the claimed %d fully paid months are %d by the evidence)",
			it.GetMonthsPaid(), res.MonthsPaid, it.GetMonthsPaid(), res.MonthsPaid)
	}
	why := res.Reasons.Refusals() &^ waived(it.GetOverride())
	if res.Reasons.Has(refund.SizeMissing) {
		why = why.With(refund.SizeMissing) // a hold: nobody may be paid before a person knows its size
	}
	if why != 0 {
		r := store.Rejection{Code: store.RejectNotEligible,
			Detail: "按政策复核不符合条件 (under the policy the evidence does not make the unit eligible): " + why.String()}
		for _, reason := range why.List() {
			r.Reasons = append(r.Reasons, reason.String())
		}
		out.Rejections = append(out.Rejections, r)
	}

	switch {
	case it.GetPayee() == nil:
		reject(store.RejectAccountInvalid, "无收款账户 (no account to pay)")
	case payeeErr != nil:
		reject(store.RejectAccountInvalid, "收款账户无效 (the account is malformed): %v", payeeErr)
	case !accountNumber(payee.AccountNo):
		reject(store.RejectAccountInvalid, "账号 %q 无效 (not an account number)", payee.AccountNo)
	case payee.Kind == refund.AccountSocialInsurance && size != refund.SizeSmall && size != refund.SizeMicro:
		reject(store.RejectAccountInvalid, "社保缴费账户仅限小微企业 (a social-insurance account is for small and micro units only)")
	}
	return out
}

// waived returns the refusal reasons a reviewer's reinstatement set aside;
// an override without a written reason waives nothing.
func waived(o *wengangv1.ReviewOverride) refund.Reasons {
	if o == nil || strings.TrimSpace(o.GetReason()) == "" {
		return 0
	}
	s, err := protoconv.ToReasons(o.GetWaivedReasons())
	if err != nil {
		return 0
	}
	return s.Refusals()
}

// evidence turns an item's monthly contributions into contribution rows the
// rules read (a month's paid rows as one row paid on its last paid-on date,
// its unpaid rows as one unpaid row), sums the refund base (the paid parts
// of the policy year's months) and lists what makes the evidence
// impossible.
func evidence(p refund.Params, asOf civil.Date, code string, ms []*wengangv1.MonthlyContribution) ([]refund.Contribution, int64, []string) {
	var (
		rows     []refund.Contribution
		base     int64
		problems []string
		prev     civil.Month
	)
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i, m := range ms {
		period, err := protoconv.ToMonth(m.GetPeriod())
		if err != nil || period == 0 {
			bad("month %d: no valid period", i+1)
			continue
		}
		if period <= prev {
			bad("%s: months not in increasing order, each once", period)
		}
		prev = period
		if period > p.MonthsThrough {
			bad("%s: after the policy's last counted month %s", period, p.MonthsThrough)
		}
		n, unpaid := m.GetRowCount(), m.GetUnpaidRowCount()
		if n < 1 || unpaid < 0 || unpaid > n {
			bad("%s: %d rows with %d unpaid", period, n, unpaid)
			continue
		}
		er, ee, owed := m.GetPaidEmployerFen(), m.GetPaidEmployeeFen(), m.GetUnpaidFen()
		if er < 0 || ee < 0 || owed < 0 || er > maxFen || ee > maxFen || owed > maxFen {
			bad("%s: amounts out of range", period)
			continue
		}
		if n == unpaid && er+ee != 0 {
			bad("%s: paid amounts without a paid row", period)
		}
		paidOn, err := protoconv.ToDate(m.GetLastPaidOn())
		if err != nil || paidOn > asOf {
			bad("%s: last paid on %v, after the as-of date %s", period, m.GetLastPaidOn(), asOf)
		}
		if n > unpaid {
			if paidOn == 0 || paidOn > asOf {
				paidOn = asOf
			}
			rows = append(rows, refund.Contribution{USCC: code, Period: period, EmployerFen: er, EmployeeFen: ee, PaidOn: paidOn})
			if period.Year() == p.PolicyYear {
				base += er + ee
			}
		}
		if unpaid > 0 {
			rows = append(rows, refund.Contribution{USCC: code, Period: period, EmployerFen: owed})
		}
	}
	return rows, base, problems
}

// accountNumber reports whether s is an account number as the source files
// give them: letters, digits and hyphens, 1 to 64 of them.
func accountNumber(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}
