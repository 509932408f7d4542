package sms

import (
	"errors"
	"fmt"

	"wengang/policy/money"
)

// DefaultSignature is the sender's name that opens every notice (短信签名),
// in 【】 as Chinese SMS require.
const DefaultSignature = "聊城市人社局"

// Notice is what the refund notice says to one unit.
type Notice struct {
	Signature string // such as DefaultSignature
	UnitName  string
	PlanYear  int    // the year of the refund plan, such as 2022 (the policy year is the one before)
	RefundFen int64  // the refund to be paid
	Phone     string // the county agency's phone for objections, such as 0635-8241234
}

// Text returns the notice as one Chinese SMS, with the amount in yuan to
// the fen:
//
//	【聊城市人社局】您单位（…）符合2022年失业保险稳岗返还政策，拟返还金额4320.00元，
//	将于公示期满后直接拨付至单位账户，无需申请。如有异议请于公示期内致电0635-8241234。
//
// Every field is required; the refund must be positive.
func (n Notice) Text() (string, error) {
	if n.Signature == "" || n.UnitName == "" || n.PlanYear <= 0 || n.Phone == "" {
		return "", errors.New("sms: a notice needs a signature, a unit name, a plan year and a phone")
	}
	if n.RefundFen <= 0 {
		return "", fmt.Errorf("sms: a notice needs a positive refund, not %d fen", n.RefundFen)
	}
	return fmt.Sprintf("【%s】您单位（%s）符合%d年失业保险稳岗返还政策，拟返还金额%s元，将于公示期满后直接拨付至单位账户，无需申请。如有异议请于公示期内致电%s。",
		n.Signature, n.UnitName, n.PlanYear, money.FormatYuan(n.RefundFen), n.Phone), nil
}
