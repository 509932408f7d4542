package iso20022

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wengang/policy/civil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func sample() Pain001 {
	debtor := Party{Name: "聊城市失业保险基金", AccountNo: "1611000000000000001", Bank: "中国工商银行聊城分行", BankCode: "102466000001"}
	return Pain001{
		MsgID: "F2022-0001-371502", CreatedAt: time.Date(2022, 6, 1, 9, 30, 0, 0, time.FixedZone("CST", 8*3600)), Initiator: "聊城市人力资源和社会保障局",
		Payments: []Payment{
			{ID: "F2022-0001-371502", ExecutionDate: civil.MustDate(2022, 6, 1), Debtor: debtor, Transactions: []Transaction{
				{EndToEndID: "P2022-00000001", AmountFen: 123405, Creditor: Party{Name: "聊城市东昌府区宏达机械有限公司", AccountNo: "6222020000000000001", Bank: "中国农业银行东昌府支行", BankCode: "103466000123"}, Purpose: "失业保险稳岗返还"},
				{EndToEndID: "P2022-00000002", AmountFen: 5, Creditor: Party{Name: "A&B <商贸> 有限公司", AccountNo: "37001234", Bank: "聊城农商银行"}, Purpose: "失业保险稳岗返还"},
			}},
			{ID: "F2022-0001-371521", ExecutionDate: civil.MustDate(2022, 6, 1), Debtor: debtor, Transactions: []Transaction{
				{EndToEndID: "P2022-00000003", AmountFen: 1000000, Creditor: Party{Name: "阳谷县景阳冈酒业有限公司", AccountNo: "15-0001", Bank: "中国建设银行阳谷支行", BankCode: "105466000777"}, Purpose: "失业保险稳岗返还"},
			}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

func TestWritePain001Golden(t *testing.T) {
	var b bytes.Buffer
	if err := WritePain001(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "pain001.golden", b.Bytes())
	for _, want := range []string{
		`<NbOfTxs>3</NbOfTxs>`, `<CtrlSum>11234.10</CtrlSum>`, `<InstdAmt Ccy="CNY">1234.05</InstdAmt>`,
		`<InstdAmt Ccy="CNY">0.05</InstdAmt>`, `<InstdAmt Ccy="CNY">10000.00</InstdAmt>`, `<MmbId>103466000123</MmbId>`,
		`xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"`, `A&amp;B &lt;商贸&gt; 有限公司`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("document lacks %s", want)
		}
	}
	var again bytes.Buffer
	if err := WritePain001(&again, sample()); err != nil || !bytes.Equal(again.Bytes(), b.Bytes()) {
		t.Errorf("the same message gave other bytes (%v)", err)
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 1: "0.01", 10: "0.10", 99: "0.99", 100: "1.00", 123405: "1234.05", 900719925474099199: "9007199254740991.99"} {
		if got := Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %s, want %s", fen, got, want)
		}
	}
}

func TestWritePain001Refuses(t *testing.T) {
	for name, edit := range map[string]func(*Pain001){
		"no message id":   func(m *Pain001) { m.MsgID = "" },
		"long message id": func(m *Pain001) { m.MsgID = strings.Repeat("M", 36) },
		"no transactions": func(m *Pain001) { m.Payments = nil },
		"zero amount":     func(m *Pain001) { m.Payments[0].Transactions[0].AmountFen = 0 },
		"duplicate id":    func(m *Pain001) { m.Payments[1].Transactions[0].EndToEndID = "P2022-00000001" },
	} {
		t.Run(name, func(t *testing.T) {
			m := sample()
			edit(&m)
			var b bytes.Buffer
			if err := WritePain001(&b, m); err == nil || b.Len() != 0 {
				t.Errorf("err %v, %d bytes written", err, b.Len())
			}
		})
	}
}

// TestRoundTrip builds a status report from a pain.001's transactions and
// reads it back to them.
func TestRoundTrip(t *testing.T) {
	m := sample()
	var sts []Status
	for i, p := range m.Payments {
		for j, tx := range p.Transactions {
			s := Status{EndToEndID: tx.EndToEndID, Status: StatusSettled, BankReference: "B" + tx.EndToEndID, On: civil.MustDate(2022, 6, 2)}
			if i == 0 && j == 1 {
				s = Status{EndToEndID: tx.EndToEndID, Status: StatusRejected, ReasonCode: "AC04", Reason: "账户已销户", On: civil.MustDate(2022, 6, 3)}
			}
			sts = append(sts, s)
		}
	}
	var b bytes.Buffer
	if err := WritePain002(&b, Pain002{MsgID: "RPT-1", CreatedAt: time.Date(2022, 6, 3, 18, 0, 0, 0, time.FixedZone("CST", 8*3600)), OriginalMsgID: m.MsgID, Transactions: sts}); err != nil {
		t.Fatal(err)
	}
	golden(t, "pain002.golden", b.Bytes())
	got, err := ReadPain002(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != m.Count() {
		t.Fatalf("read %d statuses, want %d", len(got), m.Count())
	}
	for i, s := range got {
		want := sts[i]
		if want.BankReference == "" {
			want.BankReference = "RPT-1" // the report's MsgId
		}
		want.Line = s.Line
		if s != want {
			t.Errorf("status %d = %+v, want %+v", i, s, want)
		}
		if s.Line <= 1 {
			t.Errorf("status %d at line %d", i, s.Line)
		}
	}
	if !got[0].Paid() || got[1].Paid() || !got[1].Rejected() {
		t.Errorf("Paid/Rejected wrong: %+v", got[:2])
	}
}

func TestReadPain002Bad(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
<CstmrPmtStsRpt><GrpHdr><MsgId>R</MsgId><CreDtTm>2022-06-03T18:00:00+08:00</CreDtTm></GrpHdr>
<OrgnlPmtInfAndSts>
`
	for _, tc := range []struct {
		name, doc string
		lines     []int
	}{
		{"not xml", "hello", []int{1}},
		{"truncated", head + "<TxInfAndSts><OrgnlEndToEndId>P1</OrgnlEndToEndId>", []int{5}},
		{"pain.001", `<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"></Document>`, []int{1}},
		{"pain.002 v3", `<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"></Document>`, []int{1}},
		{"empty", "", []int{1}},
		{"missing fields", head + "<TxInfAndSts><TxSts>ACSC</TxSts></TxInfAndSts>\n<TxInfAndSts><OrgnlEndToEndId>P2</OrgnlEndToEndId></TxInfAndSts>\n<TxInfAndSts><OrgnlEndToEndId>P3</OrgnlEndToEndId><TxSts>RJCT</TxSts></TxInfAndSts>\n</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>", []int{5, 6, 7}},
		{"twice", head + "<TxInfAndSts><OrgnlEndToEndId>P1</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>\n<TxInfAndSts><OrgnlEndToEndId>P1</OrgnlEndToEndId><TxSts>ACSC</TxSts><AccptncDtTm>2022-13-01T00:00:00</AccptncDtTm></TxInfAndSts>\n</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>", []int{6, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts, err := ReadPain002(strings.NewReader(tc.doc))
			var es Errors
			if !errors.As(err, &es) || sts != nil {
				t.Fatalf("got %v, %v; want Errors", sts, err)
			}
			var lines []int
			for _, e := range es {
				lines = append(lines, e.Line)
			}
			if !slicesEqual(lines, tc.lines) {
				t.Errorf("lines %v, want %v: %v", lines, tc.lines, err)
			}
		})
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
