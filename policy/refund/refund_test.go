package refund

import (
	"strings"
	"testing"

	"wengang/policy/civil"
)

func TestLayoffVectors(t *testing.T) {
	t.Parallel()
	p := DefaultParams()
	tests := []struct {
		n0, n1 int32
		pass   bool
	}{
		{100, 110, true}, {200, 189, true}, {200, 188, false}, {1000, 945, true}, {1000, 944, false},
		{10, 8, true}, {10, 7, false}, {31, 29, true}, {20, 15, false}, {0, 0, true}, {0, 5, true},
		{31, 31, true}, {40, 31, false}, // 22.5%, not small at year end
	}
	for _, tt := range tests {
		if got := p.Layoff(tt.n0, tt.n1); got != tt.pass {
			t.Errorf("Layoff(%d, %d) = %v, want %v", tt.n0, tt.n1, got, tt.pass)
		}
	}
	// With "small" read from the start of the year, (31, 29) is not small.
	p.SmallBy = SmallByYearStart
	if p.Layoff(31, 29) {
		t.Error("Layoff(31, 29) passes with small_by year_start")
	}
	if !p.Layoff(30, 25) {
		t.Error("Layoff(30, 25) fails with small_by year_start")
	}
}

func TestRefundVectors(t *testing.T) {
	t.Parallel()
	p := DefaultParams()
	for base, want := range map[int64]int64{480000: 432000, 1234567: 1111110, 5: 5, 15: 14, 25: 23, 1: 1, 0: 0} {
		if got := p.Refund(base); got != want {
			t.Errorf("Refund(%d) = %d, want %d", base, got, want)
		}
	}
}

func TestDefaultParams(t *testing.T) {
	t.Parallel()
	p := DefaultParams()
	if p.PolicyYear != 2021 || p.RateBP != 9000 || p.SmallHeadcount != 30 || p.SmallBy != SmallByYearEnd ||
		p.MonthsRequired != 12 || p.MonthsThrough != 202112 || p.PublicityWorkdays != 5 ||
		p.CountyPayBy != 20220531 || p.AllPaidBy != 20220630 {
		t.Fatalf("unexpected Liaocheng 2022 parameters: %+v", p)
	}
	bad := `{"id":"x","policy_year":2021,"rate_bp":0,"layoff_limit":{"num":55,"den":1000},"small_layoff_limit":{"num":20,"den":100},"small_headcount":30,"small_by":"sometimes","months_required":12,"months_through":"2021-12","publicity_workdays":5,"county_pay_by":"2022-05-31","all_paid_by":"2022-06-30"}`
	_, err := ParseParams(strings.NewReader(bad))
	if err == nil || !strings.Contains(err.Error(), "rate_bp") || !strings.Contains(err.Error(), "small_by") {
		t.Fatalf("ParseParams accepted bad parameters or did not name them all: %v", err)
	}
}

func TestReasonsSorted(t *testing.T) {
	t.Parallel()
	all := AllReasons()
	for i := 1; i < len(all); i++ {
		if all[i-1].String() >= all[i].String() {
			t.Fatalf("reason %v sorts after %v", all[i-1], all[i])
		}
	}
	var s Reasons
	for _, r := range all {
		s = s.With(r)
	}
	back, err := ParseReasons(s.String())
	if err != nil || back != s {
		t.Fatalf("ParseReasons(%q) = %v, %v", s.String(), back, err)
	}
}

// A unit that passes every rule; tests change one thing at a time.
const goodUSCC = "91440300708461136T"

func paid(period civil.Month, on civil.Date, employer, employee int64) Contribution {
	return Contribution{USCC: goodUSCC, Period: period, EmployerFen: employer, EmployeeFen: employee, PaidOn: on}
}

func goodInput() Input {
	in := Input{
		Unit: Unit{USCC: goodUSCC, Name: "聊城市某某餐饮有限公司", County: "371502", Industry: "6110",
			Size: SizeSmall, Status: StatusActive, HeadcountStart: 20, HeadcountEnd: 20},
		Accounts: []Account{{USCC: goodUSCC, Kind: AccountCorporate, Bank: "中国工商银行", AccountNo: "1610001234567890123", AccountName: "聊城市某某餐饮有限公司"}},
	}
	for m := 1; m <= 12; m++ {
		in.Contributions = append(in.Contributions, paid(civil.Month(202100+m), civil.MustDate(2022, 1, 10), 2800, 1200))
	}
	return in
}

func screenOne(in Input, asOf civil.Date) Result {
	s := Screener{Params: DefaultParams(), AsOf: asOf}
	return s.Decide(&in)
}

func TestDecide(t *testing.T) {
	t.Parallel()
	d := civil.MustDate(2022, 4, 28)
	tests := []struct {
		name     string
		change   func(*Input)
		decision Decision
		reasons  string
		months   int32
		base     int64
		refund   int64
		payee    AccountKind
	}{
		{"eligible", func(*Input) {}, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"not service industry", func(in *Input) { in.Unit.Industry = "1311" }, Ineligible, "NOT_SERVICE_INDUSTRY", 12, 48000, 0, AccountCorporate},
		{"large", func(in *Input) { in.Unit.Size = SizeLarge }, Ineligible, "NOT_SME", 12, 48000, 0, AccountCorporate},
		{"size missing", func(in *Input) { in.Unit.Size = SizeUnknown }, Hold, "SIZE_MISSING", 12, 48000, 43200, AccountCorporate},
		{"deregistered", func(in *Input) { in.Unit.Status = StatusDeregistered }, Ineligible, "DEREGISTERED", 12, 48000, 0, AccountCorporate},
		{"revoked", func(in *Input) { in.Unit.Status = StatusRevoked }, Ineligible, "DEREGISTERED", 12, 48000, 0, AccountCorporate},
		{"eleven months", func(in *Input) { in.Contributions = in.Contributions[1:] }, Ineligible, "INSUFFICIENT_MONTHS", 11, 44000, 0, AccountCorporate},
		{"earlier years count for months", func(in *Input) {
			in.Contributions = in.Contributions[6:]
			for m := 7; m <= 12; m++ {
				in.Contributions = append(in.Contributions, paid(civil.Month(201900+m), civil.MustDate(2019, 12, 1), 100, 50))
			}
		}, Eligible, "", 12, 24000, 21600, AccountCorporate},
		{"2022 months do not count", func(in *Input) {
			in.Contributions = in.Contributions[1:]
			in.Contributions = append(in.Contributions, paid(202201, civil.MustDate(2022, 2, 10), 2800, 1200))
		}, Ineligible, "INSUFFICIENT_MONTHS", 11, 44000, 0, AccountCorporate},
		{"unpaid month of Y", func(in *Input) { in.Contributions[3].PaidOn = 0 }, Ineligible, "ARREARS|INSUFFICIENT_MONTHS", 11, 44000, 0, AccountCorporate},
		{"paid after D", func(in *Input) { in.Contributions[3].PaidOn = civil.MustDate(2022, 4, 29) }, Ineligible, "ARREARS|INSUFFICIENT_MONTHS", 11, 44000, 0, AccountCorporate},
		{"paid late but on D", func(in *Input) { in.Contributions[3].PaidOn = d }, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"split month, one half unpaid", func(in *Input) {
			in.Contributions = append(in.Contributions, Contribution{USCC: goodUSCC, Period: 202105, EmployerFen: 10, EmployeeFen: 5})
		}, Ineligible, "ARREARS|INSUFFICIENT_MONTHS", 11, 48000, 0, AccountCorporate},
		{"split month, both paid", func(in *Input) {
			in.Contributions = append(in.Contributions, paid(202105, civil.MustDate(2021, 6, 30), 10, 5))
		}, Eligible, "", 12, 48015, 43214, AccountCorporate},
		{"back payment of 2020 and late fees never count", func(in *Input) {
			c := paid(202006, civil.MustDate(2021, 3, 1), 9999, 9999)
			c.LateFeeFen = 777
			in.Contributions[0].LateFeeFen = 500
			in.Contributions = append(in.Contributions, c)
		}, Eligible, "", 13, 48000, 43200, AccountCorporate},
		{"unpaid 2020 month is not arrears", func(in *Input) {
			in.Contributions = append(in.Contributions, Contribution{USCC: goodUSCC, Period: 202006, EmployerFen: 100})
		}, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"layoff", func(in *Input) { in.Unit.HeadcountStart, in.Unit.HeadcountEnd = 200, 188 }, Ineligible, "LAYOFF_RATE_EXCEEDED", 12, 48000, 0, AccountCorporate},
		{"small unit, 20% layoff", func(in *Input) { in.Unit.HeadcountStart, in.Unit.HeadcountEnd = 10, 8 }, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"credit list", func(in *Input) {
			in.Exclusions = []Exclusion{{USCC: goodUSCC, List: ListCredit, ListedOn: civil.MustDate(2021, 1, 1)}}
		}, Ineligible, "CREDIT_BLACKLIST", 12, 48000, 0, AccountCorporate},
		{"every list", func(in *Input) {
			for _, l := range []List{ListCredit, ListZombie, ListIndustryPolicy, ListEnvironment} {
				in.Exclusions = append(in.Exclusions, Exclusion{USCC: goodUSCC, List: l, ListedOn: d})
			}
		}, Ineligible, "CREDIT_BLACKLIST|ENVIRONMENT|INDUSTRY_POLICY|ZOMBIE", 12, 48000, 0, AccountCorporate},
		{"removed from list by D", func(in *Input) {
			in.Exclusions = []Exclusion{{USCC: goodUSCC, List: ListZombie, ListedOn: civil.MustDate(2020, 1, 1), RemovedOn: d}}
		}, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"listed after D", func(in *Input) {
			in.Exclusions = []Exclusion{{USCC: goodUSCC, List: ListEnvironment, ListedOn: d.AddDays(1)}}
		}, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"no contributions in Y", func(in *Input) {
			for i := range in.Contributions {
				in.Contributions[i].Period -= 100 // the same months of 2020
			}
		}, Ineligible, "NO_CONTRIBUTIONS", 12, 0, 0, AccountCorporate},
		{"checksum", func(in *Input) { in.Unit.USCC = "91440300708461136U" }, Hold, "USCC_CHECKSUM", 12, 48000, 43200, AccountCorporate},
		{"checksum and refused", func(in *Input) { in.Unit.USCC = "91440300708461136U"; in.Unit.Size = SizeLarge }, Ineligible, "NOT_SME|USCC_CHECKSUM", 12, 48000, 0, AccountCorporate},
		{"social-insurance account of a small unit", func(in *Input) { in.Accounts[0].Kind = AccountSocialInsurance }, Eligible, "", 12, 48000, 43200, AccountSocialInsurance},
		{"social-insurance account of a medium unit", func(in *Input) { in.Accounts[0].Kind = AccountSocialInsurance; in.Unit.Size = SizeMedium }, Hold, "ACCOUNT_MISSING", 12, 48000, 43200, 0},
		{"corporate preferred", func(in *Input) {
			in.Accounts = []Account{{Kind: AccountSocialInsurance, AccountNo: "1"}, {Kind: AccountCorporate, AccountNo: "2"}}
		}, Eligible, "", 12, 48000, 43200, AccountCorporate},
		{"no account", func(in *Input) { in.Accounts = nil }, Hold, "ACCOUNT_MISSING", 12, 48000, 43200, 0},
		{"no account, refused: not judged", func(in *Input) { in.Accounts = nil; in.Unit.Industry = "0111" }, Ineligible, "NOT_SERVICE_INDUSTRY", 12, 48000, 0, 0},
		{"no account and size missing", func(in *Input) { in.Accounts = nil; in.Unit.Size = SizeUnknown }, Hold, "ACCOUNT_MISSING|SIZE_MISSING", 12, 48000, 43200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := goodInput()
			tt.change(&in)
			got := screenOne(in, d)
			if got.Decision != tt.decision || got.Reasons.String() != tt.reasons || got.MonthsPaid != tt.months ||
				got.BaseFen != tt.base || got.RefundFen != tt.refund || got.Payee.Kind != tt.payee {
				t.Fatalf("got %v %q months %d base %d refund %d payee %v; want %v %q months %d base %d refund %d payee %v",
					got.Decision, got.Reasons, got.MonthsPaid, got.BaseFen, got.RefundFen, got.Payee.Kind,
					tt.decision, tt.reasons, tt.months, tt.base, tt.refund, tt.payee)
			}
		})
	}
}

func TestScreenGroupsAndSorts(t *testing.T) {
	t.Parallel()
	a, b := goodInput(), goodInput()
	b.Unit.USCC = "914403001922038216"
	b.Unit.Name = "B"
	for i := range b.Contributions {
		b.Contributions[i].USCC = b.Unit.USCC
	}
	b.Accounts = nil
	ds := &Dataset{Units: []Unit{a.Unit, b.Unit}}
	// Interleave the two units' rows and add one of an unknown unit.
	for i := range a.Contributions {
		ds.Contributions = append(ds.Contributions, b.Contributions[i], a.Contributions[i])
	}
	ds.Contributions = append(ds.Contributions, paid(202101, 20210201, 1, 1))
	ds.Contributions[len(ds.Contributions)-1].USCC = "123502001549897397"
	ds.Accounts = a.Accounts
	rs, err := Screen(ds, DefaultParams(), 20220428)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].USCC != b.Unit.USCC || rs[1].USCC != goodUSCC {
		t.Fatalf("results not sorted by USCC: %+v", rs)
	}
	if rs[1].Decision != Eligible || rs[0].Decision != Hold || rs[0].Reasons.String() != "ACCOUNT_MISSING" || rs[0].BaseFen != 48000 {
		t.Fatalf("unexpected results: %+v", rs)
	}
	ds.Units = append(ds.Units, a.Unit)
	if _, err := Screen(ds, DefaultParams(), 20220428); err == nil {
		t.Fatal("a duplicate unit was accepted")
	}
}
