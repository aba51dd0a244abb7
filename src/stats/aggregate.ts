/**
 * Builds the submission payload (DESIGN.md "Submission and collector") from the not-yet-submitted events. Pure
 * arithmetic over the repository's grouped rows; the service supplies the installation facts and the fleet.
 */
import { randomUUID } from 'node:crypto';
import type { DeploymentMode, Feature, PrinterModel, PrinterType } from './events.js';
import type { AggregateRow, UsageRepository } from './repository.js';

/** The submission payload's version; the collector accepts exactly this one (shared, so they cannot drift). */
export const PAYLOAD_SCHEMA_VERSION = 1;

export interface FleetMember {
  type: PrinterType;
  model: PrinterModel;
}

export interface InstallationFacts {
  installation_id: string;
  first_seen: string;
  app_version: string;
  runtime_version: string;
  platform: string;
  deployment_mode: DeploymentMode;
  country_code: string | null;
}

export interface AggregatedStats {
  schema_version: number;
  submission_id: string;
  submission_timestamp: string;
  installation: InstallationFacts;
  period: { start: string; end: string; duration_days: number };
  printer_fleet: {
    printer_count: number;
    printer_types: PrinterType[];
    printer_type_counts: Partial<Record<PrinterType, number>>;
    printer_model_counts: Partial<Record<PrinterModel, number>>;
  };
  usage_stats: {
    job_count: number;
    job_completed_count: number;
    job_failed_count: number;
    job_cancelled_count: number;
    print_hours: number;
    file_count: number;
    upload_count: number;
    uptime_hours: number;
    feature_usage: Partial<Record<Feature, boolean>>;
  };
  error_summary: Record<string, number>;
}

export interface AggregateInput {
  repository: UsageRepository;
  installation: InstallationFacts;
  period: { start: string; end: string };
  fleet: readonly FleetMember[];
  features: Partial<Record<Feature, boolean>>;
  /** Seconds the running process has been up inside the period (finished runs come from app_shutdown events). */
  currentRunSeconds: number;
  submissionId?: string;
  now: Date;
}

const round2 = (value: number) => Math.round(value * 100) / 100;

/** Hours at two decimals, as every print and uptime figure is shown and sent. */
export const hoursFromSeconds = (seconds: number): number => round2(seconds / 3600);

export function summarizeFleet(fleet: readonly FleetMember[]): AggregatedStats['printer_fleet'] {
  const typeCounts: Partial<Record<PrinterType, number>> = {};
  const modelCounts: Partial<Record<PrinterModel, number>> = {};
  for (const printer of fleet) {
    typeCounts[printer.type] = (typeCounts[printer.type] ?? 0) + 1;
    modelCounts[printer.model] = (modelCounts[printer.model] ?? 0) + 1;
  }
  return {
    printer_count: fleet.length,
    printer_types: (Object.keys(typeCounts) as PrinterType[]).sort(),
    printer_type_counts: typeCounts,
    printer_model_counts: modelCounts,
  };
}

export function summarizeUsage(rows: readonly AggregateRow[]): {
  usage: Omit<AggregatedStats['usage_stats'], 'uptime_hours' | 'feature_usage'>;
  errors: Record<string, number>;
} {
  const usage = {
    job_count: 0,
    job_completed_count: 0,
    job_failed_count: 0,
    job_cancelled_count: 0,
    print_hours: 0,
    file_count: 0,
    upload_count: 0,
  };
  const errors: Record<string, number> = {};
  let printSeconds = 0;
  for (const row of rows) {
    switch (row.event_type) {
      case 'job_created':
        usage.job_count += row.events;
        break;
      case 'job_completed':
        usage.job_completed_count += row.events;
        printSeconds += row.duration_seconds ?? 0;
        break;
      case 'job_failed':
        usage.job_failed_count += row.events;
        if (row.failure_type === 'cancelled') usage.job_cancelled_count += row.events;
        printSeconds += row.duration_seconds ?? 0;
        break;
      case 'file_uploaded':
        usage.upload_count += row.events;
        usage.file_count += row.events;
        break;
      case 'file_downloaded':
        usage.file_count += row.events;
        break;
      case 'error_occurred': {
        const slug = row.error_type ?? 'internal_error';
        errors[slug] = (errors[slug] ?? 0) + row.events;
        break;
      }
      default:
        break;
    }
  }
  usage.print_hours = hoursFromSeconds(printSeconds);
  return { usage, errors };
}

export function aggregateStats(input: AggregateInput): AggregatedStats {
  const { repository, period } = input;
  const { usage, errors } = summarizeUsage(repository.aggregateUnsubmitted(period.end));
  const finishedRunsSeconds = repository.unsubmittedUptimeSeconds(period.start, period.end);
  const durationMs = Math.max(0, Date.parse(period.end) - Date.parse(period.start));
  return {
    schema_version: PAYLOAD_SCHEMA_VERSION,
    submission_id: input.submissionId ?? randomUUID(),
    submission_timestamp: input.now.toISOString(),
    installation: input.installation,
    period: { start: period.start, end: period.end, duration_days: round2(durationMs / 86_400_000) },
    printer_fleet: summarizeFleet(input.fleet),
    usage_stats: {
      ...usage,
      uptime_hours: hoursFromSeconds(finishedRunsSeconds + input.currentRunSeconds),
      feature_usage: input.features,
    },
    error_summary: errors,
  };
}
