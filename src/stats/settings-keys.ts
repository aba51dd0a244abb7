/**
 * Every key of the `usage_settings` table, in one place: what the export shows and the delete removes is exactly
 * this list, and no two parts can pick the same name for different things.
 */
import type { Feature } from './events.js';

export const SETTINGS = {
  optInStatus: 'opt_in_status',
  installationId: 'installation_id',
  firstSeen: 'first_seen',
  lastSubmission: 'last_submission',
  submissionSecret: 'submission_secret',
  lastSubmissionError: 'last_submission_error',
  /** The MQTT mirror's Home Assistant discovery node id for this installation. */
  mqttNodeId: 'mqtt_node_id',
  /** What the MQTT mirror's last run published, so printers that left the config are removed. */
  mqttPublished: 'mqtt_published',
} as const;

const FEATURE_STATE_PREFIX = 'feature_state.';

/** How a feature was switched at the last start (`on`/`off`), to record feature_enabled/disabled on a change. */
export function featureSettingKey(feature: Feature): string {
  return FEATURE_STATE_PREFIX + feature;
}
