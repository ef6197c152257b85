import { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { assertMqttInternals, TESTED_MQTT_VERSION } from './acks.js';

describe('the mqtt.js internals acks.ts relies on', () => {
  it(`are all there in the installed mqtt.js (tested with ${TESTED_MQTT_VERSION}.x; if this fails, read the message)`, () => {
    // Throws "mqtt.js <version> no longer has MqttClient.prototype.<name> ..." naming the internal that is gone.
    expect(() => assertMqttInternals(MqttClient.prototype)).not.toThrow();
  });

  it('are named in the error when one is missing or changed shape', () => {
    expect(() => assertMqttInternals({})).toThrow(
      /^mqtt\.js \d+\.\d+\.\d+ no longer has MqttClient\.prototype\.handleMessage\(packet, callback\), whose callback\(err\) skips the automatic PUBACK: .*install that version$/,
    );
    expect(() => assertMqttInternals({ handleMessage: (_p: unknown) => undefined })).toThrow(
      /no longer has MqttClient\.prototype\.handleMessage\(packet, callback\)/,
    );
    expect(() => assertMqttInternals({})).toThrow(expect.objectContaining({ code: 'ERR_SOURCE' }));
  });
});
