// Package batchtest builds county batches for tests (wengang.v1.
// BatchContent) whose items pass the city's re-check under the Liaocheng
// 2022 parameters, for tests to spoil one fact at a time.
package batchtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// USCC returns the n-th of a family of valid unified social credit codes
// (right check character), for fixtures.
func USCC(n int) string {
	first := fmt.Sprintf("91371502MA%07d", n)
	c, err := uscc.CheckChar(first)
	if err != nil {
		panic(err)
	}
	return first + string(c)
}

// Item returns an item that passes the city's re-check under the Liaocheng
// 2022 parameters: a small service-industry unit with its corporate
// account, every month of 2020-12 to 2021-12 paid (13 months) with 400000
// fen from the employer and 100000 fen from the employees.
func Item(county, code string) *wengangv1.BatchItem {
	it := &wengangv1.BatchItem{
		Uscc: code, Name: "聊城市测试服务有限公司" + code[len(code)-4:], County: county, Industry: "6210",
		SizeClass: wengangv1.SizeClass_SIZE_CLASS_SMALL, RegistrationStatus: wengangv1.RegistrationStatus_REGISTRATION_STATUS_ACTIVE,
		HeadcountStart: 20, HeadcountEnd: 21,
		Payee: &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, Bank: "中国工商银行聊城分行", BankCode: "102466000017",
			AccountNo: "1611001019200123456", AccountName: "聊城市测试服务有限公司"},
	}
	it.Contributions = append(it.Contributions, Month(2020, 12, 400000, 100000))
	for m := 1; m <= 12; m++ {
		it.Contributions = append(it.Contributions, Month(2021, m, 400000, 100000))
	}
	Settle(it)
	return it
}

// Month returns a fully paid month of one row, paid on the 15th of the
// month after.
func Month(y, m int, employerFen, employeeFen int64) *wengangv1.MonthlyContribution {
	py, pm := y, m+1
	if pm == 13 {
		py, pm = y+1, 1
	}
	return &wengangv1.MonthlyContribution{
		Period: &wengangv1.Month{Year: int32(y), Month: int32(m)}, RowCount: 1,
		PaidEmployerFen: employerFen, PaidEmployeeFen: employeeFen,
		LastPaidOn: &wengangv1.Date{Year: int32(py), Month: int32(pm), Day: 15},
	}
}

// Settle sets the item's claimed months paid, base and refund to what its
// evidence gives under the Liaocheng 2022 parameters.
func Settle(it *wengangv1.BatchItem) {
	p := refund.DefaultParams()
	var base int64
	var months int32
	for _, m := range it.Contributions {
		if m.GetUnpaidRowCount() == 0 && m.GetRowCount() > 0 && int(m.GetPeriod().GetYear())*100+int(m.GetPeriod().GetMonth()) <= int(p.MonthsThrough) {
			months++
		}
		if int(m.GetPeriod().GetYear()) == p.PolicyYear && m.GetRowCount() > m.GetUnpaidRowCount() {
			base += m.GetPaidEmployerFen() + m.GetPaidEmployeeFen()
		}
	}
	it.MonthsPaid, it.BaseFen, it.RefundFen = months, base, p.Refund(base)
}

// Batch returns a batch of county with one passing item per code, its
// item count and total set.
func Batch(county, id string, codes ...string) *wengangv1.BatchContent {
	b := &wengangv1.BatchContent{
		BatchId: id, County: county, ScreeningId: "1", DatasetHash: "d41d8cd98f00b204e9800998ecf8427e",
		AsOf: &wengangv1.Date{Year: 2022, Month: 4, Day: 28}, PolicyId: refund.DefaultParamsID, PolicyYear: 2021,
		SealedAt: timestamppb.New(time.Date(2022, 4, 28, 9, 0, 0, 0, time.UTC)), SealedBy: "clerk-" + county,
	}
	for _, c := range codes {
		b.Items = append(b.Items, Item(county, c))
	}
	Total(b)
	return b
}

// Total sets the batch's item count and total from its items.
func Total(b *wengangv1.BatchContent) {
	b.ItemCount, b.TotalFen = int64(len(b.Items)), 0
	for _, it := range b.Items {
		b.TotalFen += it.GetRefundFen()
	}
}

// Push returns the request that pushes b, with its content hash and the
// deterministic encoding hashed.
func Push(b *wengangv1.BatchContent) (*wengangv1.PushBatchRequest, []byte) {
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(content)
	return &wengangv1.PushBatchRequest{Batch: b, ContentHash: hex.EncodeToString(sum[:])}, content
}
