// The compatibility suite's Go side, run by broker/tests/compat.rs: Debian's packaged
// Shopify/sarama 1.22 and segmentio/kafka-go 0.2 (bookworm), built offline from
// /usr/share/gocode. Produces, consumes and lists offsets; prints one JSON line per
// operation, as compat.py does. "unsupported" means the client got UNSUPPORTED_VERSION
// for a request version Weir does not decode (message format v0/v1), as documented.
//
// Usage: weircompat BOOTSTRAP
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
)

const (
	saramaDefault = "sarama 1.22 (default)"
	saramaV2      = "sarama 1.22 (V2_1_0_0)"
	kafkaGo       = "kafka-go 0.2"
	topic         = "go-ts"
	tsBase        = int64(1700000000000)
)

func emit(client, op, result, detail string) {
	line, _ := json.Marshal(map[string]string{"client": client, "op": op, "result": result, "detail": detail})
	fmt.Println(string(line))
}

// report prints ok with detail, or fail with the error.
func report(client, op string, detail string, err error) {
	if err != nil {
		emit(client, op, "fail", err.Error())
	} else {
		emit(client, op, "ok", detail)
	}
}

// refused prints "unsupported" when err is UNSUPPORTED_VERSION, else fail.
func refused(client, op, what string, err error, want error) {
	if err != nil && errors.Is(err, want) {
		emit(client, op, "unsupported", what)
	} else {
		emit(client, op, "fail", fmt.Sprintf("expected UNSUPPORTED_VERSION, got %v", err))
	}
}

func saramaConfig(version *sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	if version != nil {
		c.Version = *version
	}
	c.Producer.Return.Successes = true
	return c
}

// The default configuration speaks Kafka 0.8.2: Produce v0, message format v0.
func saramaDefaults(addr string) {
	p, err := sarama.NewSyncProducer([]string{addr}, saramaConfig(nil))
	if err != nil {
		emit(saramaDefault, "Produce", "fail", err.Error())
		return
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("x")})
	var kerr sarama.KError
	if errors.As(err, &kerr) && kerr == sarama.ErrUnsupportedVersion {
		err = sarama.ErrUnsupportedVersion
	}
	refused(saramaDefault, "Produce", "Produce v0 (message format v0)", err, sarama.ErrUnsupportedVersion)
}

func produceTen(addr string, cfg *sarama.Config) error {
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 10)
	for i := range msgs {
		ts := time.Unix(0, (tsBase+int64(10*i))*int64(time.Millisecond))
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("g%d", i)), Timestamp: ts}
	}
	if err := p.SendMessages(msgs); err != nil {
		return err
	}
	for i, m := range msgs {
		if m.Offset != int64(i) {
			return fmt.Errorf("record %d at offset %d", i, m.Offset)
		}
	}
	return nil
}

func consumeTen(addr string, cfg *sarama.Config) error {
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	defer pc.Close()
	for i := 0; i < 10; i++ {
		select {
		case m := <-pc.Messages():
			if string(m.Value) != fmt.Sprintf("g%d", i) || m.Offset != int64(i) {
				return fmt.Errorf("record %d: offset %d value %q", i, m.Offset, m.Value)
			}
		case err := <-pc.Errors():
			return err
		case <-time.After(15 * time.Second):
			return fmt.Errorf("timed out after %d records", i)
		}
	}
	return nil
}

func saramaV210(addr string) {
	v := sarama.V2_1_0_0
	cfg := saramaConfig(&v)
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err == nil {
		err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
		admin.Close()
	}
	report(saramaV2, "CreateTopics", "1 partition", err)
	report(saramaV2, "Produce", "10 records, offsets 0-9", produceTen(addr, cfg))
	report(saramaV2, "Fetch", "10 records in order", consumeTen(addr, cfg))
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		report(saramaV2, "ListOffsets by timestamp", "", err)
		return
	}
	defer client.Close()
	between, err := client.GetOffset(topic, 0, tsBase+45)
	first, err2 := client.GetOffset(topic, 0, tsBase)
	if err == nil && err2 != nil {
		err = err2
	}
	if err == nil && (between != 5 || first != 0) {
		err = fmt.Errorf("expected offsets 5 and 0, got %d and %d", between, first)
	}
	report(saramaV2, "ListOffsets by timestamp", "record-granular", err)
}

// dial connects to the partition's leader with a fresh connection: kafka-go 0.2's
// connection is not reusable after an error answer.
func dial(addr string) (*kafka.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
	if err == nil {
		conn.SetDeadline(time.Now().Add(15 * time.Second))
	}
	return conn, err
}

// kafka-go 0.2 writes message format v1 (Produce v2) and reads with Fetch v2: both
// refused; its ListOffsets v1 works (on the records sarama wrote).
func kafkaGoOps(addr string) {
	conn, err := dial(addr)
	if err == nil {
		var off int64
		off, err = conn.ReadOffset(time.Unix(0, (tsBase+45)*int64(time.Millisecond)))
		if err == nil && off != 5 {
			err = fmt.Errorf("expected offset 5, got %d", off)
		}
		conn.Close()
	}
	report(kafkaGo, "ListOffsets by timestamp", "record-granular", err)
	if conn, err = dial(addr); err == nil {
		_, err = conn.WriteMessages(kafka.Message{Value: []byte("x")})
		conn.Close()
	}
	refused(kafkaGo, "Produce", "Produce v2 (message format v1)", err, kafka.UnsupportedVersion)
	if conn, err = dial(addr); err == nil {
		_, err = conn.ReadMessage(1 << 20)
		conn.Close()
	}
	refused(kafkaGo, "Fetch", "Fetch v2 (message format v1)", err, kafka.UnsupportedVersion)
}

func main() {
	addr := os.Args[1]
	saramaV210(addr)
	saramaDefaults(addr)
	kafkaGoOps(addr)
}
