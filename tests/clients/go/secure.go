package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// secureConfig describes the secured broker the test started: its
// listeners, its CA, a client certificate, the PLAIN users of its JAAS
// config, and OAUTHBEARER tokens signed with the key of its JWKS.
type secureConfig struct {
	SaslPlaintext string `json:"sasl_plaintext"` // SASL_PLAINTEXT: PLAIN and SCRAM
	SaslSSL       string `json:"sasl_ssl"`       // SASL_SSL: PLAIN and SCRAM over TLS
	SSL           string `json:"ssl"`            // SSL with required client certificates
	OAuth         string `json:"oauth"`          // SASL_PLAINTEXT with OAUTHBEARER
	CA            string `json:"ca"`
	// A client certificate the broker's mapping rule makes User:<ClientCertUser>.
	ClientCert     string `json:"client_cert"`
	ClientKey      string `json:"client_key"`
	ClientCertUser string `json:"client_cert_user"`
	AdminUser      string `json:"admin_user"` // a PLAIN user and the super user
	AdminPassword  string `json:"admin_password"`
	PlainUser      string `json:"plain_user"` // a PLAIN user without ACLs of its own
	PlainPassword  string `json:"plain_password"`
	// OAUTHBEARER tokens for User:<OAuthUser>: one valid, one expired.
	OAuthUser    string `json:"oauth_user"`
	OAuthToken   string `json:"oauth_token"`
	ExpiredToken string `json:"expired_token"`
}

func readSecureConfig(path string) (*secureConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the -secure file: %w", err)
	}
	var sc secureConfig
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("the -secure file: %w", err)
	}
	return &sc, nil
}

func secureChecks() []check {
	const limit = 2 * time.Minute
	return []check{
		{"sasl/plain", limit, checkSASLPlain},
		{"sasl/scram", limit, checkSASLSCRAM},
		{"sasl/oauthbearer", limit, checkOAuthBearer},
		{"tls/mutual", limit, checkMutualTLS},
		{"acl/create-list-enforce", limit, checkACLs},
	}
}

// tlsConfig trusts the test's CA, with the client certificate if withCert.
func (sc *secureConfig) tlsConfig(withCert bool) (*tls.Config, error) {
	ca, err := os.ReadFile(sc.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", sc.CA)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(sc.ClientCert, sc.ClientKey)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// on is the options of a client of address logging in with mechanism (none
// for nil) over TLS if tlsCfg is set; the seed is replaced, and a refused
// login fails fast.
func on(e *env, who, address string, mechanism sasl.Mechanism, tlsCfg *tls.Config, extra ...kgo.Opt) []kgo.Opt {
	opts := append(e.opts(who), kgo.SeedBrokers(address), kgo.RetryTimeout(10*time.Second))
	if mechanism != nil {
		opts = append(opts, kgo.SASL(mechanism))
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	return append(opts, extra...)
}

// roundTripAs creates topic (as the admin), produces n records with the
// given login and reads them back with it; it fails on any error.
func roundTripAs(ctx context.Context, e *env, who, topic string, opts []kgo.Opt) error {
	if err := createTopic(ctx, e, topic, 1, nil); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	const n = 5
	for i := range n {
		if err := produceSync(ctx, cl, &kgo.Record{Value: []byte(fmt.Sprintf("%s %d", who, i))}); err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
	}
	reader, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer reader.Close()
	var got []string
	for len(got) < n {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := reader.PollFetches(pollCtx)
		cancel()
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("%s: fetch: %w", who, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if ctx.Err() != nil {
			return fmt.Errorf("%s read %d of %d records back", who, len(got), n)
		}
	}
	for i, v := range got {
		if v != fmt.Sprintf("%s %d", who, i) {
			return fmt.Errorf("%s read back %v", who, got)
		}
	}
	return nil
}

// refused checks that a client with opts cannot get metadata, and that the
// reason is wantErr (nil: any error).
func refused(ctx context.Context, what string, opts []kgo.Opt, wantErr error) error {
	cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(3*time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	reqCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(reqCtx, cl)
	if err == nil {
		return fmt.Errorf("%s: the broker answered Metadata", what)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		return fmt.Errorf("%s: refused with %v, want %s", what, err, errName(wantErr))
	}
	return nil
}

// allowTopicPrefix grants principal every operation on topics starting with
// prefix, as the admin.
func allowTopicPrefix(ctx context.Context, e *env, principal, prefix string) error {
	b := kadm.NewACLs().Topics(prefix).ResourcePatternType(kadm.ACLPatternPrefixed).
		Allow(principal).AllowHosts("*").Operations(kadm.OpAll)
	res, err := e.adm.CreateACLs(ctx, b)
	if err != nil {
		return fmt.Errorf("CreateACLs: %w", err)
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("CreateACLs for %s: %w (%s)", principal, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// checkSASLPlain: PLAIN over SASL_SSL (TLS to the broker's certificate) and
// over SASL_PLAINTEXT, as the admin; a wrong password is refused with
// SASL_AUTHENTICATION_FAILED.
func checkSASLPlain(ctx context.Context, e *env) error {
	sc := e.secure
	tlsCfg, err := sc.tlsConfig(false)
	if err != nil {
		return err
	}
	admin := plain.Auth{User: sc.AdminUser, Pass: sc.AdminPassword}.AsMechanism()
	if err := roundTripAs(ctx, e, "plain-ssl", e.name("plain-ssl"), on(e, "plain-ssl", sc.SaslSSL, admin, tlsCfg)); err != nil {
		return err
	}
	if err := roundTripAs(ctx, e, "plain", e.name("plain"), on(e, "plain", sc.SaslPlaintext, admin, nil)); err != nil {
		return err
	}
	wrong := plain.Auth{User: sc.AdminUser, Pass: "not-" + sc.AdminPassword}.AsMechanism()
	return refused(ctx, "PLAIN with a wrong password", on(e, "plain-wrong", sc.SaslPlaintext, wrong, nil), kerr.SaslAuthenticationFailed)
}

// checkSASLSCRAM: the admin creates SCRAM-SHA-256 and SCRAM-SHA-512
// credentials for a user with kadm (AlterUserScramCredentials) and reads
// them back (DescribeUserScramCredentials); that user logs in with each
// mechanism over SASL_SSL and SASL_PLAINTEXT and works on its own topics;
// a wrong password, and a mechanism after its credential is deleted, are
// refused.
func checkSASLSCRAM(ctx context.Context, e *env) error {
	sc := e.secure
	user, password := e.name("scram-user"), "scram-secret-"+e.run
	altered, err := e.adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: password},
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password},
	})
	if err != nil {
		return fmt.Errorf("AlterUserScramCredentials: %w", err)
	}
	if err := altered.Error(); err != nil {
		return fmt.Errorf("AlterUserScramCredentials: %w", err)
	}
	described, err := e.adm.DescribeUserSCRAMs(ctx, user)
	if err != nil {
		return fmt.Errorf("DescribeUserScramCredentials: %w", err)
	}
	d := described[user]
	var creds []string
	for _, c := range d.CredInfos {
		creds = append(creds, fmt.Sprintf("%v/%d", c.Mechanism, c.Iterations))
	}
	slices.Sort(creds)
	want := []string{fmt.Sprintf("%v/4096", kadm.ScramSha256), fmt.Sprintf("%v/8192", kadm.ScramSha512)}
	if d.Err != nil || !slices.Equal(creds, want) {
		return fmt.Errorf("DescribeUserScramCredentials of %s: %v (err %v), want %v", user, creds, d.Err, want)
	}
	if err := allowTopicPrefix(ctx, e, "User:"+user, e.name("scram")); err != nil {
		return err
	}
	tlsCfg, err := sc.tlsConfig(false)
	if err != nil {
		return err
	}
	auth := scram.Auth{User: user, Pass: password}
	if err := roundTripAs(ctx, e, "scram-256", e.name("scram")+"-256", on(e, "scram-256", sc.SaslSSL, auth.AsSha256Mechanism(), tlsCfg)); err != nil {
		return err
	}
	if err := roundTripAs(ctx, e, "scram-512", e.name("scram")+"-512", on(e, "scram-512", sc.SaslPlaintext, auth.AsSha512Mechanism(), nil)); err != nil {
		return err
	}
	wrong := scram.Auth{User: user, Pass: "not-" + password}.AsSha512Mechanism()
	if err := refused(ctx, "SCRAM with a wrong password", on(e, "scram-wrong", sc.SaslPlaintext, wrong, nil), kerr.SaslAuthenticationFailed); err != nil {
		return err
	}
	altered, err = e.adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || altered.Error() != nil {
		return fmt.Errorf("deleting the SCRAM-SHA-256 credential: %v %v", err, altered.Error())
	}
	return refused(ctx, "SCRAM-SHA-256 after its credential was deleted", on(e, "scram-deleted", sc.SaslPlaintext, auth.AsSha256Mechanism(), nil), kerr.SaslAuthenticationFailed)
}

// checkOAuthBearer: a token signed with the key of the broker's JWKS logs
// in as its subject, who works on the topics ACLs allow it; an expired
// token is refused.
func checkOAuthBearer(ctx context.Context, e *env) error {
	sc := e.secure
	if err := allowTopicPrefix(ctx, e, "User:"+sc.OAuthUser, e.name("oauth")); err != nil {
		return err
	}
	token := func(t string) sasl.Mechanism {
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) { return oauth.Auth{Token: t}, nil })
	}
	if err := roundTripAs(ctx, e, "oauth", e.name("oauth"), on(e, "oauth", sc.OAuth, token(sc.OAuthToken), nil)); err != nil {
		return err
	}
	// Outside what the ACLs allow: the subject is the principal.
	cl, err := kgo.NewClient(on(e, "oauth-outside", sc.OAuth, token(sc.OAuthToken), nil, kgo.DefaultProduceTopic(e.name("plain")))...)
	if err != nil {
		return err
	}
	err = produceSync(ctx, cl, &kgo.Record{Value: []byte("x")})
	cl.Close()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("the token's subject produced outside its ACLs: %s, want TOPIC_AUTHORIZATION_FAILED", errName(err))
	}
	return refused(ctx, "an expired token", on(e, "oauth-expired", sc.OAuth, token(sc.ExpiredToken), nil), kerr.SaslAuthenticationFailed)
}

// checkMutualTLS: over the SSL listener that requires client certificates,
// the certificate's subject maps to a principal the ACLs apply to; without a
// certificate the handshake fails.
func checkMutualTLS(ctx context.Context, e *env) error {
	sc := e.secure
	if err := allowTopicPrefix(ctx, e, "User:"+sc.ClientCertUser, e.name("mtls")); err != nil {
		return err
	}
	withCert, err := sc.tlsConfig(true)
	if err != nil {
		return err
	}
	if err := roundTripAs(ctx, e, "mtls", e.name("mtls"), on(e, "mtls", sc.SSL, nil, withCert)); err != nil {
		return err
	}
	cl, err := kgo.NewClient(on(e, "mtls-outside", sc.SSL, nil, withCert, kgo.DefaultProduceTopic(e.name("plain")))...)
	if err != nil {
		return err
	}
	err = produceSync(ctx, cl, &kgo.Record{Value: []byte("x")})
	cl.Close()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("the certificate's principal produced outside its ACLs: %s, want TOPIC_AUTHORIZATION_FAILED", errName(err))
	}
	noCert, err := sc.tlsConfig(false)
	if err != nil {
		return err
	}
	return refused(ctx, "TLS without a client certificate", on(e, "mtls-nocert", sc.SSL, nil, noCert), nil)
}

// checkACLs: the admin creates ACLs for a PLAIN user with kadm (CreateAcls),
// lists them back exactly (DescribeAcls, by principal and by resource), and
// the broker enforces them: the user writes the topic it may write, gets
// TOPIC_AUTHORIZATION_FAILED reading it and writing another, and, once the
// admin deletes the ACLs (DeleteAcls), may not write the first either.
func checkACLs(ctx context.Context, e *env) error {
	sc := e.secure
	principal := "User:" + sc.PlainUser
	allowed, other := e.name("acl-allowed"), e.name("acl-other")
	for _, t := range []string{allowed, other} {
		if err := createTopic(ctx, e, t, 1, nil); err != nil {
			return err
		}
	}
	b := kadm.NewACLs().Topics(allowed).ResourcePatternType(kadm.ACLPatternLiteral).
		Allow(principal).AllowHosts("*").Operations(kadm.OpWrite, kadm.OpDescribe)
	created, err := e.adm.CreateACLs(ctx, b)
	if err != nil {
		return fmt.Errorf("CreateACLs: %w", err)
	}
	for _, r := range created {
		if r.Err != nil {
			return fmt.Errorf("CreateACLs: %w (%s)", r.Err, r.ErrMessage)
		}
	}
	listACLs := func(filter *kadm.ACLBuilder) ([]string, error) {
		res, err := e.adm.DescribeACLs(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("DescribeACLs: %w", err)
		}
		var got []string
		for _, r := range res {
			if r.Err != nil {
				return nil, fmt.Errorf("DescribeACLs: %w (%s)", r.Err, r.ErrMessage)
			}
			for _, d := range r.Described {
				got = append(got, fmt.Sprintf("%s %s %v %s %v %v %v", d.Principal, d.Host, d.Type, d.Name, d.Pattern, d.Operation, d.Permission))
			}
		}
		slices.Sort(got)
		return slices.Compact(got), nil
	}
	want := []string{
		fmt.Sprintf("%s * %v %s %v %v %v", principal, kmsg.ACLResourceTypeTopic, allowed, kadm.ACLPatternLiteral, kadm.OpDescribe, kmsg.ACLPermissionTypeAllow),
		fmt.Sprintf("%s * %v %s %v %v %v", principal, kmsg.ACLResourceTypeTopic, allowed, kadm.ACLPatternLiteral, kadm.OpWrite, kmsg.ACLPermissionTypeAllow),
	}
	slices.Sort(want)
	byPrincipal, err := listACLs(kadm.NewACLs().AnyResource().Allow(principal).AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		return err
	}
	if !slices.Equal(byPrincipal, want) {
		return fmt.Errorf("DescribeACLs by principal: %v, want %v", byPrincipal, want)
	}
	byTopic, err := listACLs(kadm.NewACLs().Topics(allowed).Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternMatch))
	if err != nil {
		return err
	}
	if !slices.Equal(byTopic, want) {
		return fmt.Errorf("DescribeACLs by topic: %v, want %v", byTopic, want)
	}

	user := plain.Auth{User: sc.PlainUser, Pass: sc.PlainPassword}.AsMechanism()
	produceTo := func(topic string) error {
		cl, err := kgo.NewClient(on(e, "acl-user", sc.SaslPlaintext, user, nil, kgo.DefaultProduceTopic(topic))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		return produceSync(ctx, cl, &kgo.Record{Value: []byte("acl")})
	}
	if err := produceTo(allowed); err != nil {
		return fmt.Errorf("producing where the ACLs allow it: %w", err)
	}
	if err := produceTo(other); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("producing to a topic without ACLs: %s, want TOPIC_AUTHORIZATION_FAILED", errName(err))
	}
	reader, err := kgo.NewClient(on(e, "acl-reader", sc.SaslPlaintext, user, nil, kgo.ConsumeTopics(allowed), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	var readErr error
	readUntil := time.Now().Add(30 * time.Second)
	for readErr == nil && ctx.Err() == nil && time.Now().Before(readUntil) {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := reader.PollFetches(pollCtx)
		cancel()
		readErr = fetchErr(fs)
		if n := len(fs.Records()); n > 0 {
			readErr = fmt.Errorf("read %d records without a Read ACL", n)
		}
	}
	reader.Close()
	if !errors.Is(readErr, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("reading with Write and Describe only: %v, want TOPIC_AUTHORIZATION_FAILED", readErr)
	}

	deleted, err := e.adm.DeleteACLs(ctx, kadm.NewACLs().Topics(allowed).ResourcePatternType(kadm.ACLPatternLiteral).
		Allow(principal).AllowHosts("*").Operations(kadm.OpWrite, kadm.OpDescribe))
	if err != nil {
		return fmt.Errorf("DeleteACLs: %w", err)
	}
	var n int
	for _, r := range deleted {
		if r.Err != nil {
			return fmt.Errorf("DeleteACLs: %w", r.Err)
		}
		n += len(r.Deleted)
	}
	if n != 2 {
		return fmt.Errorf("DeleteACLs deleted %d ACLs, want 2", n)
	}
	if left, err := listACLs(kadm.NewACLs().AnyResource().Allow(principal).AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); err != nil || len(left) != 0 {
		return fmt.Errorf("DescribeACLs after the delete: %v (%v)", left, err)
	}
	if err := produceTo(allowed); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("producing after the ACLs were deleted: %s, want TOPIC_AUTHORIZATION_FAILED", errName(err))
	}
	return nil
}
