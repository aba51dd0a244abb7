/**
 * What Home Assistant's MQTT integration requires of a discovery config, as a zod schema (after
 * homeassistant/components/mqtt: MQTT_ENTITY_COMMON_SCHEMA, the sensor and binary_sensor PLATFORM_SCHEMAs, the device
 * and origin schemas and the discovery topic pattern). Used only by the tests.
 */
import { z } from 'zod';

const topic = z
  .string()
  .min(1)
  .refine((t) => !t.includes('#') && !t.includes('+'), 'a state topic cannot hold wildcards');

const device = z
  .object({
    identifiers: z.array(z.string().min(1)).min(1),
    name: z.string().min(1),
    manufacturer: z.string().min(1),
    model: z.string().min(1),
    sw_version: z.string().optional(),
    via_device: z.string().optional(),
  })
  .strict();

const common = {
  name: z.string().min(1).nullable(),
  unique_id: z.string().min(1),
  state_topic: topic,
  value_template: z.string().includes('value_json'),
  availability: z
    .array(
      z.object({
        topic,
        payload_available: z.string().optional(),
        payload_not_available: z.string().optional(),
      }),
    )
    .min(1),
  device,
  origin: z.object({ name: z.string().min(1), sw: z.string().optional(), url: z.url().optional() }).strict(),
  has_entity_name: z.boolean().optional(),
  icon: z
    .string()
    .regex(/^mdi:[a-z0-9-]+$/)
    .optional(),
  entity_category: z.enum(['config', 'diagnostic']).optional(),
  json_attributes_topic: topic.optional(),
};

// The device classes and units Home Assistant accepts together (sensor/const.py DEVICE_CLASS_UNITS, in part).
export const sensorSchema = z
  .object({
    ...common,
    unit_of_measurement: z.string().optional(),
    device_class: z.enum(['duration']).optional(),
    state_class: z.enum(['measurement', 'total', 'total_increasing']).optional(),
    suggested_display_precision: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((c) => c.device_class !== 'duration' || ['d', 'h', 'min', 's', 'ms'].includes(c.unit_of_measurement ?? ''), {
    message: 'a duration needs a time unit',
  });

export const binarySensorSchema = z
  .object({ ...common, payload_on: z.string().min(1), payload_off: z.string().min(1) })
  .strict();

/** `<prefix>/<component>/[<node_id>/]<object_id>/config`, ids of [a-zA-Z0-9_-]. */
export function discoveryTopicParts(
  prefix: string,
  discoveryTopic: string,
): { component: string; nodeId: string; objectId: string } | null {
  const match = new RegExp(`^${prefix}/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$`).exec(
    discoveryTopic,
  );
  return match ? { component: match[1]!, nodeId: match[2]!, objectId: match[3]! } : null;
}

/** Parses a retained discovery message as Home Assistant would; throws with the reasons when it would not load. */
export function validateDiscovery(
  prefix: string,
  discoveryTopic: string,
  payload: string,
): z.infer<typeof sensorSchema> {
  const parts = discoveryTopicParts(prefix, discoveryTopic);
  if (!parts) throw new Error(`not a discovery topic: ${discoveryTopic}`);
  const json: unknown = JSON.parse(payload);
  const schema = parts.component === 'sensor' ? sensorSchema : binarySensorSchema;
  return schema.parse(json) as z.infer<typeof sensorSchema>;
}
