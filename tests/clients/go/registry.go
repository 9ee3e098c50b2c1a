package main

// The schema registry checks: franz-go's sr package (Confluent's REST API
// client and its Serde, the wire format's framing) against the registry
// built into the broker, and broker-side schema id validation seen from kgo.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

func registryChecks() []check {
	return []check{
		{"sr/rest-api", 2 * time.Minute, checkRegistryAPI},
		{"sr/serde-and-validation", 2 * time.Minute, checkSerdeAndValidation},
	}
}

func (e *env) registry() (*sr.Client, error) {
	if e.registryURL == "" {
		return nil, errors.New("no -registry URL given")
	}
	return sr.NewClient(sr.URLs(e.registryURL))
}

// wantCode checks that err is the registry's answer with Confluent's error code.
func wantCode(what string, err error, code int) error {
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: want error code %d, got %v", what, code, err)
	}
	if re.ErrorCode != code || re.Message == "" {
		return fmt.Errorf("%s: want error code %d with a message, got %d %q", what, code, re.ErrorCode, re.Message)
	}
	return nil
}

func avroRecord(name string, fields ...string) string {
	return fmt.Sprintf(`{"type":"record","name":%q,"namespace":"franzgo","fields":[%s]}`, name, strings.Join(fields, ","))
}

func checkRegistryAPI(ctx context.Context, e *env) error {
	cl, err := e.registry()
	if err != nil {
		return err
	}
	types, err := cl.SupportedTypes(ctx)
	if err != nil {
		return fmt.Errorf("SupportedTypes: %w", err)
	}
	for _, t := range []sr.SchemaType{sr.TypeAvro, sr.TypeJSON, sr.TypeProtobuf} {
		if !slices.Contains(types, t) {
			return fmt.Errorf("SupportedTypes %v lacks %v", types, t)
		}
	}
	subject := e.name("sr") + "-value"
	v1 := sr.Schema{Schema: avroRecord("Tick", `{"name":"px","type":"double"}`)}
	first, err := cl.CreateSchema(ctx, subject, v1)
	if err != nil {
		return fmt.Errorf("CreateSchema: %w", err)
	}
	if first.ID <= 0 || first.Version != 1 || first.Subject != subject {
		return fmt.Errorf("CreateSchema answered %+v", first)
	}
	again, err := cl.CreateSchema(ctx, subject, v1)
	if err != nil || again.ID != first.ID || again.Version != 1 {
		return fmt.Errorf("the same schema again: %+v, %v; want id %d version 1", again, err, first.ID)
	}
	found, err := cl.LookupSchema(ctx, subject, v1)
	if err != nil || found.ID != first.ID || found.Version != 1 {
		return fmt.Errorf("LookupSchema: %+v, %v", found, err)
	}

	// BACKWARD by default: a field with a default may be added; a type may not change.
	v2 := sr.Schema{Schema: avroRecord("Tick", `{"name":"px","type":"double"}`, `{"name":"venue","type":"string","default":"X"}`)}
	changed := sr.Schema{Schema: avroRecord("Tick", `{"name":"px","type":"string"}`)}
	if res, err := cl.CheckCompatibility(ctx, subject, -1, v2); err != nil || !res.Is {
		return fmt.Errorf("a field added with a default: %+v, %v; want compatible", res, err)
	}
	if res, err := cl.CheckCompatibility(ctx, subject, -1, changed); err != nil || res.Is {
		return fmt.Errorf("a field's type changed: %+v, %v; want incompatible", res, err)
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, subject)
	if len(set) != 1 || set[0].Err != nil || set[0].Level != sr.CompatFull {
		return fmt.Errorf("SetCompatibility FULL: %+v", set)
	}
	got := cl.Compatibility(ctx, subject)
	if len(got) != 1 || got[0].Err != nil || got[0].Level != sr.CompatFull {
		return fmt.Errorf("Compatibility: %+v", got)
	}
	second, err := cl.CreateSchema(ctx, subject, v2)
	if err != nil || second.Version != 2 || second.ID == first.ID {
		return fmt.Errorf("CreateSchema v2: %+v, %v", second, err)
	}
	if err := wantCode("an incompatible schema", func() error { _, err := cl.CreateSchema(ctx, subject, changed); return err }(), 409); err != nil {
		return err
	}
	versions, err := cl.SubjectVersions(ctx, subject)
	if err != nil || !reflect.DeepEqual(versions, []int{1, 2}) {
		return fmt.Errorf("SubjectVersions: %v, %v", versions, err)
	}
	byID, err := cl.SchemaByID(ctx, first.ID)
	if err != nil || !strings.Contains(byID.Schema, `"Tick"`) {
		return fmt.Errorf("SchemaByID: %+v, %v", byID, err)
	}
	subjects, err := cl.SubjectsByID(ctx, second.ID)
	if err != nil || !reflect.DeepEqual(subjects, []string{subject}) {
		return fmt.Errorf("SubjectsByID: %v, %v", subjects, err)
	}
	latest, err := cl.SchemaByVersion(ctx, subject, -1)
	if err != nil || latest.Version != 2 || latest.ID != second.ID {
		return fmt.Errorf("SchemaByVersion latest: %+v, %v", latest, err)
	}

	// Confluent's error codes.
	if err := wantCode("an unknown version", func() error { _, err := cl.SchemaByVersion(ctx, subject, 9); return err }(), 40402); err != nil {
		return err
	}
	if err := wantCode("an unknown id", func() error { _, err := cl.SchemaByID(ctx, 1<<30); return err }(), 40403); err != nil {
		return err
	}
	if err := wantCode("an unknown subject", func() error { _, err := cl.SubjectVersions(ctx, subject+"-none"); return err }(), 40401); err != nil {
		return err
	}
	invalid := sr.Schema{Schema: `{"type":"record","name":"Broken"}`}
	if err := wantCode("an invalid schema", func() error { _, err := cl.CreateSchema(ctx, subject+"-bad", invalid); return err }(), 42201); err != nil {
		return err
	}

	// Deletes: soft, then permanent; a permanent delete first needs a soft one.
	if err := wantCode("a permanent delete first", func() error { _, err := cl.DeleteSubject(ctx, subject, sr.HardDelete); return err }(), 40405); err != nil {
		return err
	}
	deleted, err := cl.DeleteSubject(ctx, subject, sr.SoftDelete)
	if err != nil || !reflect.DeepEqual(deleted, []int{1, 2}) {
		return fmt.Errorf("soft DeleteSubject: %v, %v", deleted, err)
	}
	all, err := cl.Subjects(ctx)
	if err != nil || slices.Contains(all, subject) {
		return fmt.Errorf("Subjects after a soft delete: %v, %v", all, err)
	}
	if withDeleted, err := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); err != nil || !slices.Contains(withDeleted, subject) {
		return fmt.Errorf("Subjects with deleted: %v, %v", withDeleted, err)
	}
	if deleted, err := cl.DeleteSubject(ctx, subject, sr.HardDelete); err != nil || !reflect.DeepEqual(deleted, []int{1, 2}) {
		return fmt.Errorf("permanent DeleteSubject: %v, %v", deleted, err)
	}
	if err := wantCode("a permanently deleted subject", func() error { _, err := cl.SubjectVersions(ctx, subject); return err }(), 40401); err != nil {
		return err
	}
	return nil
}

// reading is what the Serde checks encode: JSON under a JSON Schema.
type reading struct {
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
}

func checkSerdeAndValidation(ctx context.Context, e *env) error {
	cl, err := e.registry()
	if err != nil {
		return err
	}
	topic := e.name("sr-validated")
	on := "true"
	if err := createTopic(ctx, e, topic, 1, map[string]*string{"confluent.value.schema.validation": &on}); err != nil {
		return err
	}
	schema := sr.Schema{
		Type:   sr.TypeJSON,
		Schema: `{"type":"object","title":"Reading","properties":{"sensor":{"type":"string"},"value":{"type":"number"}},"required":["sensor","value"]}`,
	}
	registered, err := cl.CreateSchema(ctx, topic+"-value", schema)
	if err != nil {
		return fmt.Errorf("CreateSchema: %w", err)
	}
	var serde sr.Serde
	serde.Register(registered.ID, reading{}, sr.EncodeFn(json.Marshal), sr.DecodeFn(json.Unmarshal))
	want := []reading{{"s1", 1.5}, {"s2", -3}, {"s3", 0}}
	producer, err := kgo.NewClient(e.opts("sr-producer", kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1))...)
	if err != nil {
		return err
	}
	defer producer.Close()
	for _, r := range want {
		framed, err := serde.Encode(r)
		if err != nil {
			return fmt.Errorf("Serde.Encode: %w", err)
		}
		if err := produceSync(ctx, producer, &kgo.Record{Value: framed}); err != nil {
			return fmt.Errorf("a value framed with its registered id: %w", err)
		}
	}
	// Unframed, or framed with an id the subject does not have: refused.
	other, err := cl.CreateSchema(ctx, e.name("sr-other")+"-value", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"string"}`})
	if err != nil {
		return fmt.Errorf("CreateSchema other: %w", err)
	}
	var otherSerde sr.Serde
	otherSerde.Register(other.ID, "", sr.EncodeFn(json.Marshal))
	wrongID, err := otherSerde.Encode("x")
	if err != nil {
		return err
	}
	for name, value := range map[string][]byte{"unframed": []byte(`{"sensor":"raw","value":1}`), "another subject's id": wrongID} {
		err := producer.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			return fmt.Errorf("%s value: want INVALID_RECORD, got %v", name, err)
		}
	}
	records, err := consumeAll(ctx, e, "sr-consumer", topic, len(want), 500*time.Millisecond)
	if err != nil {
		return err
	}
	var got []reading
	for _, r := range records {
		var v reading
		if err := serde.Decode(r.Value, &v); err != nil {
			return fmt.Errorf("Serde.Decode at offset %d: %w", r.Offset, err)
		}
		got = append(got, v)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("read %v, want exactly the accepted %v", got, want)
	}
	return nil
}
