//! Owns the FIX pilot's Kafka side: the order gateway's flow (order requests from the orders
//! topic, or [`Submit`], through [`crate::order_gateway`] to the trading session; the book and
//! counters follow each outcome), execution reports published to the executions topic, and the
//! platform's execution reports consumed when the trading side is not ours
//! (`executions_source = "kafka"`). These are methods and handlers of [`FixPilotService`]; the
//! actor itself (sessions, reconciler, state) is in [`crate::service`].

use std::sync::Arc;
use std::time::Duration;

use actix::{
    ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseActFuture, StreamHandler,
    WrapFuture,
};
use telemesh_core::codec::CONTENT_TYPE_HEADER;
use telemesh_core::config::KafkaSettings;
use telemesh_core::topics;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, KafkaSubscriber, TopicSpec};
use telemesh_core::transport::{OutboundMessage, Subscriber};
use tokio::sync::mpsc;

use crate::gateway::{OrderRequest, RequestError};
use crate::order_gateway::{self, ConsumerTopics, GatewayOrder, Outcome, Prepared, RejectReason};
use crate::reconciler::Stream;
use crate::report::JsonFields;
use crate::service::{now_ms, FixPilotService};
use crate::session::{CancelOrder, OrderMessage};
use crate::settings::ExecutionsSource;

/// Input from the Kafka side (the platform's execution reports; order requests go through
/// [`order_gateway::run_consumer`]).
#[derive(Debug)]
enum KafkaInput {
    PlatformReport(Vec<u8>),
    Failed(String),
}

/// Submits an order request directly, as if read from the orders topic now: the same
/// checks (duplicate ClOrdID, session wait, journal) and the same send; answers when it is
/// sent or rejected.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RequestError>")]
pub struct Submit(pub OrderRequest);

impl FixPilotService {
    pub(crate) fn publish_execution(&mut self, report: &crate::report::ExecReport) {
        let Some(publisher) = self.executions.clone() else {
            return;
        };
        let payload = match serde_json::to_vec(report) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode execution report");
                return;
            }
        };
        let message = OutboundMessage {
            topic: topics::topic_name(&self.kafka.topic_prefix, &self.settings.executions_topic),
            key: Some(report.cl_ord_id.clone()),
            headers: vec![(CONTENT_TYPE_HEADER.to_owned(), b"application/json".to_vec())],
            payload,
        };
        self.queues.executions_published += 1;
        actix::spawn(async move {
            if let Err(e) = publisher.publish(message).await {
                tracing::warn!(error = %e, "execution report not published");
            }
        });
    }

    fn on_kafka_input(&mut self, input: KafkaInput) {
        match input {
            KafkaInput::PlatformReport(payload) => {
                let now = now_ms();
                self.queues.inbound_processed += 1;
                match JsonFields::parse(&payload).and_then(|f| f.report()) {
                    Ok(report) => {
                        self.recon.on_report(Stream::Trading, report, now);
                    }
                    Err(rejection) => {
                        tracing::warn!(reason = %rejection, "platform execution report rejected");
                        self.recon.on_rejected(Stream::Trading, &rejection, now);
                    }
                }
            }
            KafkaInput::Failed(detail) => {
                tracing::warn!(detail = %detail, "kafka consumer of the fix pilot stopped");
            }
        }
    }

    /// Builds the FIX message of a request (a cancel takes symbol, side and quantity from the
    /// order book), or rejects it.
    fn prepare(&self, order: GatewayOrder) -> Result<Prepared, Outcome> {
        let (message, cl_ord_id) = match order.request {
            OrderRequest::New(new) => {
                let cl = new.cl_ord_id.clone();
                (OrderMessage::New(new), cl)
            }
            OrderRequest::Cancel {
                cl_ord_id,
                orig_cl_ord_id,
            } => {
                let Some(orig) = self.recon.orders().by_cl_ord_id(&orig_cl_ord_id) else {
                    let detail = RequestError::UnknownOrder {
                        cl_ord_id: cl_ord_id.clone(),
                        orig_cl_ord_id,
                    }
                    .to_string();
                    return Err(Outcome::rejected(
                        Some(&cl_ord_id),
                        RejectReason::UnknownOrder,
                        detail,
                    ));
                };
                let cancel = CancelOrder {
                    cl_ord_id: cl_ord_id.clone(),
                    orig_cl_ord_id: orig.cl_ord_id.clone(),
                    symbol: orig.symbol.clone(),
                    side: orig.side,
                    order_qty: orig.order_qty,
                };
                (OrderMessage::Cancel(cancel), cl_ord_id)
            }
        };
        Ok(Prepared {
            cl_ord_id,
            message,
            created_ms: order.created_ms,
            request: order.position,
        })
    }

    /// Runs one order request through the gateway; the book and the counters follow its
    /// outcome.
    fn order(&mut self, order: GatewayOrder) -> ResponseActFuture<Self, Outcome> {
        let prepared = match self.prepare(order) {
            Ok(p) => p,
            Err(outcome) => {
                self.queues.orders_refused += 1;
                return Box::pin(actix::fut::ready(outcome));
            }
        };
        let link = self.trading_link.clone();
        let gateway = self.gateway.clone();
        let message = prepared.message.clone();
        self.queues.outbound_pending += 1;
        Box::pin(
            async move {
                match gateway {
                    Some(gateway) => gateway.process(link, prepared).await,
                    None if link.is_none() => Outcome::rejected(
                        Some(&prepared.cl_ord_id),
                        RejectReason::NoSession,
                        "the trading session is not configured or not started: nothing sent",
                    ),
                    None => Outcome::rejected(
                        Some(&prepared.cl_ord_id),
                        RejectReason::StoreUnavailable,
                        "the order gateway is not started: nothing sent",
                    ),
                }
            }
            .into_actor(self)
            .map(move |outcome, act, _| {
                act.queues.outbound_pending = act.queues.outbound_pending.saturating_sub(1);
                match &outcome {
                    Outcome::Sent { replayed, .. } => {
                        if !replayed {
                            act.queues.orders_sent += 1;
                        }
                        let now = now_ms();
                        match &message {
                            OrderMessage::New(o) => act.recon.orders_mut().on_sent(o, now),
                            OrderMessage::Cancel(c) => {
                                act.recon.orders_mut().on_cancel_sent(
                                    &c.cl_ord_id,
                                    &c.orig_cl_ord_id,
                                    now,
                                );
                            }
                            OrderMessage::PossResend(_) => {}
                        }
                    }
                    Outcome::Rejected { .. } => act.queues.orders_refused += 1,
                }
                outcome
            }),
        )
    }

    pub(crate) fn start_kafka(&mut self, ctx: &mut Context<Self>) {
        if !self.kafka.is_configured() {
            tracing::info!("kafka not configured: no order topic, no execution topic");
            return;
        }
        let prefix = self.kafka.topic_prefix.clone();
        let kafka = KafkaSettings {
            group_id: self.settings.consumer_group.clone(),
            ..self.kafka.clone()
        };
        let specs: Vec<TopicSpec> = [
            &self.settings.orders_topic,
            &self.settings.executions_topic,
            &self.settings.order_events_topic,
        ]
        .into_iter()
        .map(|t| TopicSpec {
            name: topics::topic_name(&prefix, t),
            partitions: 1,
            replication_factor: 1,
        })
        .collect();
        let ensure = {
            let kafka = kafka.clone();
            async move {
                match ensure_topics(&kafka, &specs).await {
                    Ok(report) if !report.failed.is_empty() => {
                        tracing::warn!(failed = ?report.failed, "some fix pilot topics could not be created")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "fix pilot topics not checked"),
                }
            }
        };
        if self.settings.executions_source == ExecutionsSource::Fix {
            match KafkaPublisher::new(&self.kafka) {
                Ok(p) => self.executions = Some(Arc::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "execution reports will not be published")
                }
            }
            let topics = ConsumerTopics {
                orders: topics::topic_name(&prefix, &self.settings.orders_topic),
                events: topics::topic_name(&prefix, &self.settings.order_events_topic),
            };
            let service = ctx.address().recipient();
            actix::spawn(async move {
                ensure.await;
                order_gateway::run_consumer(kafka, topics, service).await;
            });
            return;
        }
        let (tx, rx) = mpsc::channel::<KafkaInput>(1_024);
        ctx.add_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }));
        let full = topics::topic_name(&prefix, &self.settings.executions_topic);
        actix::spawn(async move {
            ensure.await;
            let mut subscriber = match KafkaSubscriber::new(&kafka, std::slice::from_ref(&full)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(KafkaInput::Failed(e.to_string())).await;
                    return;
                }
            };
            loop {
                match subscriber.poll(Duration::from_millis(500)).await {
                    Ok(Some(message)) => {
                        let position = message.position();
                        if tx
                            .send(KafkaInput::PlatformReport(message.payload))
                            .await
                            .is_err()
                        {
                            break; // the service stopped
                        }
                        if let Err(e) = subscriber.commit(&[position]) {
                            tracing::warn!(error = %e, "offset not stored");
                        }
                    }
                    Ok(None) => {
                        if tx.is_closed() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %full, "poll failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let _ = subscriber.close().await;
        });
    }
}

impl StreamHandler<KafkaInput> for FixPilotService {
    fn handle(&mut self, input: KafkaInput, _: &mut Context<Self>) {
        self.on_kafka_input(input);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Submit> for FixPilotService {
    type Result = ResponseActFuture<Self, Result<(), RequestError>>;

    fn handle(&mut self, Submit(request): Submit, _: &mut Context<Self>) -> Self::Result {
        let order = GatewayOrder {
            request,
            created_ms: Some(now_ms()),
            position: None,
        };
        Box::pin(self.order(order).map(|outcome, _, _| outcome.into_result()))
    }
}

impl Handler<GatewayOrder> for FixPilotService {
    type Result = ResponseActFuture<Self, Outcome>;

    fn handle(&mut self, order: GatewayOrder, _: &mut Context<Self>) -> Self::Result {
        self.order(order)
    }
}
