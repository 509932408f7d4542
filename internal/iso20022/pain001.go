// Package iso20022 writes and reads the two ISO 20022 messages of the
// payment channel to finance: the customer credit transfer initiation
// (pain.001.001.09) the city sends, and the payment status report
// (pain.002.001.10 or later) the bank answers with. It is pure: no I/O but
// the io.Writer and io.Reader it is given, no clock (times come in the
// messages). Amounts are int64 fen, written as yuan with exactly two
// decimals; no floating point is involved anywhere.
package iso20022

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"wengang/policy/civil"
)

// Namespaces of the messages.
const (
	Pain001Namespace = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
	Pain002Namespace = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
	// pain002Prefix is the namespace of every pain.002 version, less the
	// version number.
	pain002Prefix = "urn:iso:std:iso:20022:tech:xsd:pain.002.001."
)

// Currency is the currency of every amount: renminbi.
const Currency = "CNY"

// Pain001 is a customer credit transfer initiation.
type Pain001 struct {
	MsgID     string    // GrpHdr/MsgId, at most 35 characters
	CreatedAt time.Time // GrpHdr/CreDtTm, written in its own zone to the second
	Initiator string    // GrpHdr/InitgPty/Nm
	Payments  []Payment // one PmtInf each, in order
}

// Payment is one payment information block: one debtor account paying
// several creditors on one execution date.
type Payment struct {
	ID            string     // PmtInfId, at most 35 characters
	ExecutionDate civil.Date // ReqdExctnDt/Dt
	Debtor        Party      // Dbtr, DbtrAcct and DbtrAgt
	Transactions  []Transaction
}

// Party is an account holder with an account at a bank.
type Party struct {
	Name      string
	AccountNo string
	Bank      string // the bank's name (FinInstnId/Nm)
	BankCode  string // CNAPS code (联行号, FinInstnId/ClrSysMmbId/MmbId); may be empty
}

// Transaction is one credit transfer (CdtTrfTxInf).
type Transaction struct {
	EndToEndID string // PmtId/EndToEndId, at most 35 characters
	AmountFen  int64  // Amt/InstdAmt in CNY; positive
	Creditor   Party  // Cdtr, CdtrAcct and CdtrAgt
	Purpose    string // RmtInf/Ustrd
}

// Yuan formats fen as yuan with two decimals ("1234.05" for 123405); fen
// must not be negative.
func Yuan(fen int64) string {
	return strconv.FormatInt(fen/100, 10) + "." + fmt.Sprintf("%02d", fen%100)
}

// ControlSum returns the sum of the transactions' amounts in fen.
func (p Payment) ControlSum() int64 {
	var sum int64
	for _, t := range p.Transactions {
		sum += t.AmountFen
	}
	return sum
}

// Count returns the number of transactions of m.
func (m Pain001) Count() int {
	n := 0
	for _, p := range m.Payments {
		n += len(p.Transactions)
	}
	return n
}

// WritePain001 writes m as a UTF-8 XML document, indented, ending with a
// newline. The same message gives the same bytes. It refuses a message
// without transactions, with an identifier over 35 characters or with an
// amount that is not positive, writing nothing.
func WritePain001(w io.Writer, m Pain001) error {
	if err := check(m); err != nil {
		return err
	}
	var total int64
	doc := p1Document{Xmlns: Pain001Namespace}
	for _, p := range m.Payments {
		sum := p.ControlSum()
		total += sum
		pi := p1PmtInf{
			PmtInfID: p.ID, PmtMtd: "TRF", NbOfTxs: strconv.Itoa(len(p.Transactions)), CtrlSum: Yuan(sum),
			ReqdExctnDt: p1Date{Dt: isoDate(p.ExecutionDate)},
			Dbtr:        p1Party{Nm: p.Debtor.Name},
			DbtrAcct:    account(p.Debtor.AccountNo),
			DbtrAgt:     agent(p.Debtor),
			ChrgBr:      "SLEV",
		}
		for _, t := range p.Transactions {
			pi.CdtTrfTxInf = append(pi.CdtTrfTxInf, p1Tx{
				PmtID:    p1PmtID{EndToEndID: t.EndToEndID},
				Amt:      p1Amt{InstdAmt: p1Amount{Ccy: Currency, Value: Yuan(t.AmountFen)}},
				CdtrAgt:  agent(t.Creditor),
				Cdtr:     p1Party{Nm: t.Creditor.Name},
				CdtrAcct: account(t.Creditor.AccountNo),
				RmtInf:   p1RmtInf{Ustrd: t.Purpose},
			})
		}
		doc.Initn.PmtInf = append(doc.Initn.PmtInf, pi)
	}
	doc.Initn.GrpHdr = p1GrpHdr{
		MsgID: m.MsgID, CreDtTm: m.CreatedAt.Format(time.RFC3339), NbOfTxs: strconv.Itoa(m.Count()), CtrlSum: Yuan(total),
		InitgPty: p1Party{Nm: m.Initiator},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("pain.001: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("pain.001: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func check(m Pain001) error {
	if m.MsgID == "" || len([]rune(m.MsgID)) > 35 {
		return fmt.Errorf("pain.001: message id %q is not 1 to 35 characters", m.MsgID)
	}
	if m.Count() == 0 {
		return fmt.Errorf("pain.001: no transactions")
	}
	seen := make(map[string]bool)
	for _, p := range m.Payments {
		if p.ID == "" || len([]rune(p.ID)) > 35 {
			return fmt.Errorf("pain.001: payment information id %q is not 1 to 35 characters", p.ID)
		}
		for _, t := range p.Transactions {
			if t.EndToEndID == "" || len([]rune(t.EndToEndID)) > 35 {
				return fmt.Errorf("pain.001: end-to-end id %q is not 1 to 35 characters", t.EndToEndID)
			}
			if seen[t.EndToEndID] {
				return fmt.Errorf("pain.001: end-to-end id %q twice", t.EndToEndID)
			}
			seen[t.EndToEndID] = true
			if t.AmountFen <= 0 {
				return fmt.Errorf("pain.001: amount %d fen of %s is not positive", t.AmountFen, t.EndToEndID)
			}
		}
	}
	return nil
}

func isoDate(d civil.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year(), d.Month(), d.Day())
}

func account(no string) p1Acct {
	return p1Acct{ID: p1AcctID{Othr: p1Othr{ID: no}}}
}

func agent(p Party) p1Agt {
	a := p1Agt{FinInstnID: p1FinInstn{Nm: p.Bank}}
	if p.BankCode != "" {
		a.FinInstnID.ClrSysMmbID = &p1ClrSys{MmbID: p.BankCode}
	}
	return a
}

// The document's shape, element by element, in schema order.
type (
	p1Document struct {
		XMLName xml.Name `xml:"Document"`
		Xmlns   string   `xml:"xmlns,attr"`
		Initn   p1Initn  `xml:"CstmrCdtTrfInitn"`
	}
	p1Initn struct {
		GrpHdr p1GrpHdr   `xml:"GrpHdr"`
		PmtInf []p1PmtInf `xml:"PmtInf"`
	}
	p1GrpHdr struct {
		MsgID    string  `xml:"MsgId"`
		CreDtTm  string  `xml:"CreDtTm"`
		NbOfTxs  string  `xml:"NbOfTxs"`
		CtrlSum  string  `xml:"CtrlSum"`
		InitgPty p1Party `xml:"InitgPty"`
	}
	p1PmtInf struct {
		PmtInfID    string  `xml:"PmtInfId"`
		PmtMtd      string  `xml:"PmtMtd"`
		NbOfTxs     string  `xml:"NbOfTxs"`
		CtrlSum     string  `xml:"CtrlSum"`
		ReqdExctnDt p1Date  `xml:"ReqdExctnDt"`
		Dbtr        p1Party `xml:"Dbtr"`
		DbtrAcct    p1Acct  `xml:"DbtrAcct"`
		DbtrAgt     p1Agt   `xml:"DbtrAgt"`
		ChrgBr      string  `xml:"ChrgBr"`
		CdtTrfTxInf []p1Tx  `xml:"CdtTrfTxInf"`
	}
	p1Date struct {
		Dt string `xml:"Dt"`
	}
	p1Party struct {
		Nm string `xml:"Nm"`
	}
	p1Acct struct {
		ID p1AcctID `xml:"Id"`
	}
	p1AcctID struct {
		Othr p1Othr `xml:"Othr"`
	}
	p1Othr struct {
		ID string `xml:"Id"`
	}
	p1Agt struct {
		FinInstnID p1FinInstn `xml:"FinInstnId"`
	}
	p1FinInstn struct {
		ClrSysMmbID *p1ClrSys `xml:"ClrSysMmbId,omitempty"`
		Nm          string    `xml:"Nm"`
	}
	p1ClrSys struct {
		MmbID string `xml:"MmbId"`
	}
	p1Tx struct {
		PmtID    p1PmtID  `xml:"PmtId"`
		Amt      p1Amt    `xml:"Amt"`
		CdtrAgt  p1Agt    `xml:"CdtrAgt"`
		Cdtr     p1Party  `xml:"Cdtr"`
		CdtrAcct p1Acct   `xml:"CdtrAcct"`
		RmtInf   p1RmtInf `xml:"RmtInf"`
	}
	p1PmtID struct {
		EndToEndID string `xml:"EndToEndId"`
	}
	p1Amt struct {
		InstdAmt p1Amount `xml:"InstdAmt"`
	}
	p1Amount struct {
		Ccy   string `xml:"Ccy,attr"`
		Value string `xml:",chardata"`
	}
	p1RmtInf struct {
		Ustrd string `xml:"Ustrd"`
	}
)
