export {
  createNotificationGroup,
  listNotifications,
  NOTIFICATION_GROUP,
  NotificationDeliveryError,
  type NotificationGroupOptions,
  type SentNotification,
} from './notification-service';
