package refund

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"wengang/policy/civil"
)

//go:embed params/*.json
var paramFiles embed.FS

// DefaultParamsID names the parameters of the Liaocheng 2022 plan.
const DefaultParamsID = "liaocheng-2022"

// Ratio is a non-negative fraction Num/Den compared in integers.
type Ratio struct {
	Num int64 `json:"num"`
	Den int64 `json:"den"`
}

// SmallBy says which headcount makes a unit small for the layoff test.
type SmallBy string

// The readings of "small" (≤ SmallHeadcount insured staff).
const (
	SmallByYearEnd   SmallBy = "year_end"   // N1, as Zhejiang read the 2022 national policy
	SmallByYearStart SmallBy = "year_start" // N0
)

// Params are the policy parameters of one plan. They are data, not
// constants: a screening records the ID of the parameters it used.
type Params struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	PolicyYear        int         `json:"policy_year"`        // Y: contributions of its months make the base
	RateBP            int64       `json:"rate_bp"`            // refund rate in basis points (9000 = 90%)
	LayoffLimit       Ratio       `json:"layoff_limit"`       // highest layoff rate (5.5% = 55/1000)
	SmallLayoffLimit  Ratio       `json:"small_layoff_limit"` // highest layoff rate of a small unit (20/100)
	SmallHeadcount    int32       `json:"small_headcount"`    // a unit with at most this many staff is small
	SmallBy           SmallBy     `json:"small_by"`           // which headcount decides "small"
	MonthsRequired    int         `json:"months_required"`    // fully paid months needed
	MonthsThroughText string      `json:"months_through"`     // last month (YYYY-MM) whose payment counts
	MonthsThrough     civil.Month `json:"-"`
	PublicityWorkdays int         `json:"publicity_workdays"` // length of publicity in working days
	CountyPayByText   string      `json:"county_pay_by"`      // every county pays someone by then
	AllPaidByText     string      `json:"all_paid_by"`        // everyone eligible paid by then
	CountyPayBy       civil.Date  `json:"-"`
	AllPaidBy         civil.Date  `json:"-"`
}

// LoadParams returns the embedded parameters with the given ID.
func LoadParams(id string) (Params, error) {
	b, err := paramFiles.ReadFile("params/" + id + ".json")
	if err != nil {
		return Params{}, fmt.Errorf("refund: no policy parameters %q", id)
	}
	return ParseParams(bytes.NewReader(b))
}

// DefaultParams returns the Liaocheng 2022 parameters.
func DefaultParams() Params {
	p, err := LoadParams(DefaultParamsID)
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return p
}

// ParseParams reads parameters as JSON and validates them.
func ParseParams(r io.Reader) (Params, error) {
	var p Params
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Params{}, fmt.Errorf("refund: policy parameters: %w", err)
	}
	var err error
	if p.MonthsThrough, err = civil.ParseMonth(p.MonthsThroughText); err != nil {
		return Params{}, fmt.Errorf("refund: policy parameters: months_through: %w", err)
	}
	if p.CountyPayBy, err = civil.ParseDate(p.CountyPayByText); err != nil {
		return Params{}, fmt.Errorf("refund: policy parameters: county_pay_by: %w", err)
	}
	if p.AllPaidBy, err = civil.ParseDate(p.AllPaidByText); err != nil {
		return Params{}, fmt.Errorf("refund: policy parameters: all_paid_by: %w", err)
	}
	return p, p.Validate()
}

// Validate reports every parameter that is out of range.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("refund: policy parameters %q: "+format, append([]any{p.ID}, args...)...))
	}
	if p.ID == "" {
		bad("id is empty")
	}
	if p.PolicyYear < civil.MinYear || p.PolicyYear > civil.MaxYear {
		bad("policy_year %d out of range", p.PolicyYear)
	}
	if p.RateBP <= 0 || p.RateBP > 10000 {
		bad("rate_bp %d not in 1..10000", p.RateBP)
	}
	for _, f := range []struct {
		name string
		r    Ratio
	}{{"layoff_limit", p.LayoffLimit}, {"small_layoff_limit", p.SmallLayoffLimit}} {
		name, r := f.name, f.r
		if r.Den <= 0 || r.Num < 0 || r.Num > r.Den || r.Den > 1_000_000 {
			bad("%s %d/%d is not a fraction in [0, 1]", name, r.Num, r.Den)
		}
	}
	if p.SmallHeadcount < 0 {
		bad("small_headcount %d is negative", p.SmallHeadcount)
	}
	if p.SmallBy != SmallByYearEnd && p.SmallBy != SmallByYearStart {
		bad("small_by %q is neither %q nor %q", p.SmallBy, SmallByYearEnd, SmallByYearStart)
	}
	if p.MonthsRequired < 1 {
		bad("months_required %d is below 1", p.MonthsRequired)
	}
	if p.MonthsThrough.Year() < p.PolicyYear {
		bad("months_through %s is before the policy year %d", p.MonthsThrough, p.PolicyYear)
	}
	if p.PublicityWorkdays < 1 {
		bad("publicity_workdays %d is below 1", p.PublicityWorkdays)
	}
	if p.AllPaidBy < p.CountyPayBy {
		bad("all_paid_by %s is before county_pay_by %s", p.AllPaidBy, p.CountyPayBy)
	}
	return errors.Join(errs...)
}
