package rpc

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// PageSize reads a request's page size: 0 is def, more than 1000 is 1000,
// a negative size is a bad field.
func PageSize(bad *Fields, n int32, def int) int {
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

// PageToken returns an opaque page token carrying v for the list named
// scope; ReadPageToken reads it back, refusing a token of another list.
func PageToken(scope, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(scope + "\x00" + v))
}

// ReadPageToken is the inverse of PageToken for the list named scope.
func ReadPageToken(scope, token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	got, v, ok := strings.Cut(string(b), "\x00")
	if !ok || got != scope || v == "" {
		return "", false
	}
	return v, true
}

// IDPageToken is PageToken for a list paged by a numeric id.
func IDPageToken(scope string, id int64) string {
	return PageToken(scope, strconv.FormatInt(id, 10))
}

// ReadIDPageToken reads a token of IDPageToken back; a token of another
// list, or none that decodes, is a bad page_token field (and 0).
func ReadIDPageToken(bad *Fields, scope, token string) int64 {
	v, ok := ReadPageToken(scope, token)
	id, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || id <= 0 {
		bad.Add("page_token", "not a page token of this list")
		return 0
	}
	return id
}

// ParseID reads a decimal object id from a request field; anything else
// is a bad field (and 0).
func ParseID(bad *Fields, field, v string) int64 {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		bad.Add(field, "%q is not an id", v)
		return 0
	}
	return id
}
