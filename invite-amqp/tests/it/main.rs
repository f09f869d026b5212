//! Integration tests of `invite-amqp` against a real RabbitMQ (see `helpers`).

mod amqp;
mod contract;
mod helpers;
