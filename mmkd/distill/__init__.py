from .connectors import ConvConnector, MGDConnector
from .distiller import Distiller
from .engine import DistillationEngine
from .hook import DistillDiagnosticsHook, DistillationHook
from .schedules import Progress, TermSchedule, TwoStage
from .taps import FeatureRecorder, Tap
from .teacher import build_teacher

__all__ = ['ConvConnector', 'Distiller', 'DistillationEngine', 'DistillationHook', 'DistillDiagnosticsHook',
           'FeatureRecorder', 'MGDConnector', 'Progress', 'Tap', 'TermSchedule', 'TwoStage', 'build_teacher']
