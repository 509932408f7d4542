package iso20022

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"wengang/policy/civil"
)

// Transaction statuses of a status report (ExternalPaymentTransactionStatus1Code).
const (
	StatusSettled         = "ACSC" // AcceptedSettlementCompleted: the debtor's account is debited
	StatusCreditSettled   = "ACCC" // AcceptedSettlementCompletedCreditorAccount: the creditor's account is credited
	StatusRejected        = "RJCT" // Rejected: the payment did not happen or came back
	StatusPending         = "PDNG"
	StatusAcceptedTechnic = "ACTC"
)

// Status is the status of one original transaction (TxInfAndSts).
type Status struct {
	Line       int    // the line of its TxInfAndSts element
	EndToEndID string // OrgnlEndToEndId
	Status     string // TxSts, such as ACSC or RJCT
	ReasonCode string // StsRsnInf/Rsn/Cd, such as AC04
	Reason     string // StsRsnInf/AddtlInf, joined by "; "
	// BankReference is AcctSvcrRef, or ClrSysRef, or else the report's
	// MsgId.
	BankReference string
	// On is the date of AccptncDtTm, or else of the report's CreDtTm.
	On civil.Date
}

// Paid reports whether the status says the money reached the creditor.
func (s Status) Paid() bool { return s.Status == StatusSettled || s.Status == StatusCreditSettled }

// Rejected reports whether the status says the payment failed.
func (s Status) Rejected() bool { return s.Status == StatusRejected }

// Error is one thing wrong with a status report, at a line.
type Error struct {
	Line    int
	Element string // such as "TxInfAndSts/OrgnlEndToEndId"
	Reason  string
}

func (e Error) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Element, e.Reason)
}

// Errors is everything wrong with a status report, in document order.
type Errors []Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// ReadPain002 reads a payment status report (pain.002.001.10 or later) and
// returns the status of every transaction it names, in document order.
// Anything wrong is an Errors naming every bad element with its line: not
// well-formed XML (then only the first fault, where the parser stopped), not
// a pain.002 document, a transaction without OrgnlEndToEndId or TxSts, a
// rejection without a reason, an end-to-end id twice, a date that is not
// one. Group or payment-level statuses without TxInfAndSts name no
// transactions and are ignored.
func ReadPain002(r io.Reader) ([]Status, error) {
	d := xml.NewDecoder(r)
	var (
		errs    Errors
		out     []Status
		path    []string
		cur     *Status
		txLine  int
		text    strings.Builder
		msgID   string
		created civil.Date
		root    bool
		seen    = make(map[string]int)
		reasons []string
		accept  string
		acctRef string
		clrRef  string
	)
	bad := func(line int, elem, format string, args ...any) {
		errs = append(errs, Error{Line: line, Element: elem, Reason: fmt.Sprintf(format, args...)})
	}
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				bad(se.Line, "", "not well-formed XML: %s (XML格式错误)", se.Msg)
			} else {
				bad(line, "", "cannot read: %v", err)
			}
			return nil, errs
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !root {
				root = true
				if t.Name.Local != "Document" || !pain002Version(t.Name.Space) {
					bad(line, t.Name.Local, "not a pain.002.001.10 (or later) document: namespace %q (不是支付状态报告)", t.Name.Space)
					return nil, errs
				}
			}
			path = append(path, t.Name.Local)
			text.Reset()
			if t.Name.Local == "TxInfAndSts" {
				cur = &Status{Line: line}
				txLine, reasons, accept, acctRef, clrRef = line, nil, "", "", ""
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			v := strings.TrimSpace(text.String())
			text.Reset()
			p := strings.Join(path, "/")
			switch {
			case strings.HasSuffix(p, "/GrpHdr/MsgId"):
				msgID = v
			case strings.HasSuffix(p, "/GrpHdr/CreDtTm"):
				if dt, ok := dateOf(v); ok {
					created = dt
				} else {
					bad(line, "GrpHdr/CreDtTm", "%q is not a date and time", v)
				}
			case cur != nil && t.Name.Local == "OrgnlEndToEndId":
				cur.EndToEndID = v
			case cur != nil && t.Name.Local == "TxSts":
				cur.Status = v
			case cur != nil && strings.HasSuffix(p, "StsRsnInf/Rsn/Cd"):
				cur.ReasonCode = v
			case cur != nil && strings.HasSuffix(p, "StsRsnInf/AddtlInf"):
				if v != "" {
					reasons = append(reasons, v)
				}
			case cur != nil && t.Name.Local == "AccptncDtTm":
				accept = v
			case cur != nil && t.Name.Local == "AcctSvcrRef":
				acctRef = v
			case cur != nil && t.Name.Local == "ClrSysRef":
				clrRef = v
			case cur != nil && t.Name.Local == "TxInfAndSts":
				s := *cur
				cur = nil
				s.Reason = strings.Join(reasons, "; ")
				s.BankReference = acctRef
				if s.BankReference == "" {
					s.BankReference = clrRef
				}
				if accept != "" {
					if dt, ok := dateOf(accept); ok {
						s.On = dt
					} else {
						bad(txLine, "TxInfAndSts/AccptncDtTm", "%q is not a date and time", accept)
					}
				}
				switch {
				case s.EndToEndID == "":
					bad(txLine, "TxInfAndSts/OrgnlEndToEndId", "required (缺少原端到端标识)")
				case seen[s.EndToEndID] != 0:
					bad(txLine, "TxInfAndSts/OrgnlEndToEndId", "%q is also at line %d (重复)", s.EndToEndID, seen[s.EndToEndID])
				default:
					seen[s.EndToEndID] = txLine
				}
				if s.Status == "" {
					bad(txLine, "TxInfAndSts/TxSts", "required (缺少交易状态)")
				}
				if s.Rejected() && s.Reason == "" && s.ReasonCode == "" {
					bad(txLine, "TxInfAndSts/StsRsnInf", "a rejection needs a reason (退票须有原因)")
				}
				out = append(out, s)
			}
			path = path[:len(path)-1]
		}
	}
	if !root {
		bad(1, "", "empty document (空文件)")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for i := range out {
		if out[i].BankReference == "" {
			out[i].BankReference = msgID
		}
		if out[i].On == 0 {
			out[i].On = created
		}
	}
	return out, nil
}

// pain002Version reports whether ns is the namespace of pain.002.001.10 or
// a later version.
func pain002Version(ns string) bool {
	v, ok := strings.CutPrefix(ns, pain002Prefix)
	if !ok {
		return false
	}
	n, err := strconv.Atoi(v)
	return err == nil && n >= 10
}

// dateOf reads the date of an ISODateTime or ISODate, as written (its own
// zone, not converted).
func dateOf(s string) (civil.Date, bool) {
	if len(s) < 10 {
		return 0, false
	}
	if len(s) > 10 {
		if _, err := time.Parse("2006-01-02T15:04:05", s[:min(len(s), 19)]); err != nil {
			return 0, false
		}
	}
	y, err1 := strconv.Atoi(s[0:4])
	m, err2 := strconv.Atoi(s[5:7])
	dd, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	d, err := civil.NewDate(y, m, dd)
	return d, err == nil
}

// Pain002 is a payment status report, for WritePain002.
type Pain002 struct {
	MsgID         string
	CreatedAt     time.Time
	OriginalMsgID string // OrgnlGrpInfAndSts/OrgnlMsgId
	Transactions  []Status
}

// WritePain002 writes m as a pain.002.001.10 document (what a bank would
// send; the city uses it in drills and tests). Each status's BankReference
// becomes AcctSvcrRef, On AccptncDtTm, ReasonCode and Reason StsRsnInf.
func WritePain002(w io.Writer, m Pain002) error {
	doc := p2Document{Xmlns: Pain002Namespace}
	doc.Rpt.GrpHdr = p2GrpHdr{MsgID: m.MsgID, CreDtTm: m.CreatedAt.Format(time.RFC3339)}
	doc.Rpt.OrgnlGrpInfAndSts = p2OrgnlGrp{OrgnlMsgID: m.OriginalMsgID, OrgnlMsgNmID: "pain.001.001.09"}
	pi := p2PmtInf{OrgnlPmtInfID: m.OriginalMsgID}
	for _, s := range m.Transactions {
		tx := p2Tx{OrgnlEndToEndID: s.EndToEndID, TxSts: s.Status, AcctSvcrRef: s.BankReference}
		if s.ReasonCode != "" || s.Reason != "" {
			tx.StsRsnInf = &p2Rsn{AddtlInf: s.Reason}
			if s.ReasonCode != "" {
				tx.StsRsnInf.Rsn = &p2Cd{Cd: s.ReasonCode}
			}
		}
		if s.On != 0 {
			tx.AccptncDtTm = isoDate(s.On) + "T00:00:00+08:00"
		}
		pi.TxInfAndSts = append(pi.TxInfAndSts, tx)
	}
	doc.Rpt.OrgnlPmtInfAndSts = []p2PmtInf{pi}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("pain.002: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("pain.002: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

type (
	p2Document struct {
		XMLName xml.Name `xml:"Document"`
		Xmlns   string   `xml:"xmlns,attr"`
		Rpt     p2Rpt    `xml:"CstmrPmtStsRpt"`
	}
	p2Rpt struct {
		GrpHdr            p2GrpHdr   `xml:"GrpHdr"`
		OrgnlGrpInfAndSts p2OrgnlGrp `xml:"OrgnlGrpInfAndSts"`
		OrgnlPmtInfAndSts []p2PmtInf `xml:"OrgnlPmtInfAndSts"`
	}
	p2GrpHdr struct {
		MsgID   string `xml:"MsgId"`
		CreDtTm string `xml:"CreDtTm"`
	}
	p2OrgnlGrp struct {
		OrgnlMsgID   string `xml:"OrgnlMsgId"`
		OrgnlMsgNmID string `xml:"OrgnlMsgNmId"`
	}
	p2PmtInf struct {
		OrgnlPmtInfID string `xml:"OrgnlPmtInfId"`
		TxInfAndSts   []p2Tx `xml:"TxInfAndSts"`
	}
	p2Tx struct {
		OrgnlEndToEndID string `xml:"OrgnlEndToEndId"`
		TxSts           string `xml:"TxSts"`
		StsRsnInf       *p2Rsn `xml:"StsRsnInf,omitempty"`
		AccptncDtTm     string `xml:"AccptncDtTm,omitempty"`
		AcctSvcrRef     string `xml:"AcctSvcrRef,omitempty"`
	}
	p2Rsn struct {
		Rsn      *p2Cd  `xml:"Rsn,omitempty"`
		AddtlInf string `xml:"AddtlInf,omitempty"`
	}
	p2Cd struct {
		Cd string `xml:"Cd"`
	}
)
