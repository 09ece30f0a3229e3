// Structured logs: winston JSON, one event per line, always tagged with the component.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return winston.createLogger({
    level: process.env.VIPFARM_LOG_LEVEL ?? 'info',
    defaultMeta: { component, ...fields },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}
